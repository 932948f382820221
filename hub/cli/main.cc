#include "hub/hub.h"

int main(int argc, char** argv) { return hubnode::hub::RunCli(argc, argv); }

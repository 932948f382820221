# Shared by the end-to-end test scripts (source it): counted checks; each script ends with
# `echo "$pass passed, $fail failed"` and a non-zero exit when a check failed.
pass=0 fail=0
check() {  # check NAME EXPECTED ACTUAL
  if [[ "$2" == "$3" ]]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL $1: expected [$2], got [$3]"; fi
}

# work_dir HUBNODE_BIN: HUBNODE (the binary, absolute), WORK (a fresh temporary directory) and PID
# (set it to a server's pid); on exit the server is killed and WORK removed.
work_dir() {
  HUBNODE=$(realpath "$1")
  WORK=$(mktemp -d)
  PID=
  trap '[[ -n "$PID" ]] && kill -9 "$PID" 2>/dev/null; rm -rf "$WORK"' EXIT
}

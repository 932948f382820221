# The two commands of README.md. Everything else is a helper.
BUILD ?= build
JOBS  ?= $(shell nproc)
DATA  ?= $(CURDIR)/demo/hubdata

.PHONY: all deps build test demo bench clean

all: build

deps:
	@scripts/install-deps.sh

$(BUILD)/build.ninja: CMakeLists.txt | deps
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 1500

demo: build
	scripts/demo.sh $(BUILD)/hub/hubnode $(CURDIR)/demo

bench: build
	bench/store_bench.sh $(BUILD)/hub/hubnode
	bench/download_bench.sh $(BUILD)/hub/hubnode
	bench/runtime_bench.sh $(BUILD)
	bench/git_bench.sh $(BUILD)/hub/hubnode
	@echo "(the 200 x 1 GB parallel download test runs in 'make test': ctest -L heavy)"

clean:
	rm -rf $(BUILD)

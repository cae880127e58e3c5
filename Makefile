# The commands the README shows. CMake does the building; this file only drives it.
#   make        build everything that can be built here (tests only when cmocka is present)
#   make demo   build the cfl program and run the main job (no test packages needed)
#   make check  install the test packages, build, run every test, then the ASan+UBSan build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
BUILD ?= build
ASAN_BUILD ?= build-asan
MAKEFLAGS += --no-print-directory

.PHONY: all deps-build deps-check deps-demo check test test-asan demo bench clean format

all: deps-build
	@scripts/build.sh $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo
	@echo "built $(BUILD)/cfl (log: $(BUILD)/build.log)"

deps-build:
	@scripts/deps.sh build
deps-check:
	@scripts/deps.sh check
deps-demo:
	@scripts/deps.sh demo

# Every test: the normal build, then the ASan+UBSan build (clang) with the fuzz targets.
check: deps-check
	@scripts/build.sh $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCFL_TESTS=ON
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS)
	@scripts/build.sh $(ASAN_BUILD) -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug \
		-DCFL_SANITIZE=ON -DCFL_FUZZ=ON -DCFL_TESTS=ON
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
		ctest --output-on-failure -j$(JOBS)

# Only the program: the demo needs neither the tests nor their packages.
demo: deps-demo
	@echo "== build cfl (log: $(BUILD)/build.log)"
	@scripts/build.sh $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -- cfl
	@scripts/demo.sh

bench: all
	scripts/bench.sh

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)

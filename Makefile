# The commands the README shows. CMake does the building; this file only drives it.
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
BUILD ?= build
ASAN_BUILD ?= build-asan

.PHONY: all deps-build deps-check deps-demo check test test-asan demo bench clean format

all: deps-build
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j$(JOBS)

deps-build:
	@scripts/deps.sh build
deps-check:
	@scripts/deps.sh check
deps-demo:
	@scripts/deps.sh demo

# Every test: the normal build, then the ASan+UBSan build (clang) with the fuzz targets.
check: deps-check all
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS)
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug \
		-DCFL_SANITIZE=ON -DCFL_FUZZ=ON >/dev/null
	cmake --build $(ASAN_BUILD) -j$(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
		ctest --output-on-failure -j$(JOBS)

demo: deps-demo all
	scripts/demo.sh

bench: all
	scripts/bench.sh

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)

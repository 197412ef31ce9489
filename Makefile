# SPDX-License-Identifier: MIT
# The README's commands. Each first installs the Debian packages kiln needs.
#   make demo   build Release into build/, run `kiln demo`, then a quick benchmark run of
#               the default device's suites written to build/report.html
#   make check  build/ (Release), build-asan/ (ASan+UBSan), build-tsan/ (stress tests)
#   make coverage  build-coverage/ (-O0 --coverage), all tests, then gcovr's line and
#               branch coverage of src/ (stdout; build-coverage/coverage.html, .json)
#   make clean  remove the build trees
.PHONY: all demo check coverage build deps clean

CMAKE_FLAGS ?=

all: build

deps:
	@scripts/deps.sh

build: deps
	cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DKILN_WERROR=ON $(CMAKE_FLAGS)
	cmake --build build

demo: build
	build/bin/kiln demo
	build/bin/kiln bench run all --quick --html build/report.html

check: deps
	scripts/check.sh

coverage: deps
	scripts/coverage.sh

clean:
	rm -rf build build-asan build-tsan build-coverage

# SPDX-License-Identifier: MIT
# The README's two commands. Each first installs the Debian packages kiln needs.
#   make demo   build Release into build/ and run `kiln demo`
#   make check  build/ (Release), build-asan/ (ASan+UBSan), build-tsan/ (stress tests)
#   make clean  remove the build trees
.PHONY: all demo check build deps clean

CMAKE_FLAGS ?=

all: build

deps:
	@scripts/deps.sh

build: deps
	cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DKILN_WERROR=ON $(CMAKE_FLAGS)
	cmake --build build

demo: build
	build/bin/kiln demo

check: deps
	scripts/check.sh

clean:
	rm -rf build build-asan build-tsan

#!/usr/bin/env bash
# Build CityFlow (it is not on PyPI) from its public source and install it into the active Python:
#
#     bash tools/install_cityflow.sh
#
# CityFlow at a fixed commit with its rapidjson headers, plus tools/cityflow-patches.diff:
# pybind11 from PyPI instead of the absent submodule, and the fix of an upstream race in
# Engine::~Engine (destroying an engine could deadlock; gridmarl destroys one per worker, at
# its end).  Needs git, cmake, a C++ compiler and patch (Debian/Ubuntu: apt install
# build-essential cmake git patch).  PYTHON picks the interpreter (default: python);
# CITYFLOW_GIT / RAPIDJSON_GIT replace the repositories (e.g. local mirrors).
set -euo pipefail
CITYFLOW_REV=81ee0f47659ca66177a71f81676691c58ee89184
RAPIDJSON_REV=7b3d971b261ab624f745e9450b1620157e39cce5
CITYFLOW_GIT=${CITYFLOW_GIT:-https://github.com/cityflow-project/CityFlow.git}
RAPIDJSON_GIT=${RAPIDJSON_GIT:-https://github.com/cityflow-project/rapidjson.git}
PYTHON=${PYTHON:-python}
here=$(cd "$(dirname "$0")" && pwd)
for tool in git cmake patch c++; do
    command -v "$tool" >/dev/null || {
        echo "install_cityflow: '$tool' is missing (Debian/Ubuntu: apt install build-essential cmake git patch)" >&2
        exit 1
    }
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
src="$work/CityFlow"
git clone -q "$CITYFLOW_GIT" "$src"
git -C "$src" checkout -q "$CITYFLOW_REV"
rm -rf "$src/extern/rapidjson"
git clone -q "$RAPIDJSON_GIT" "$src/extern/rapidjson"
git -C "$src/extern/rapidjson" checkout -q "$RAPIDJSON_REV"
(cd "$src" && patch -p0 --quiet < "$here/cityflow-patches.diff")
"$PYTHON" -m pip install -q pybind11 setuptools wheel
CMAKE_PREFIX_PATH="$("$PYTHON" -m pybind11 --cmakedir)${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
export CMAKE_PREFIX_PATH
"$PYTHON" -m pip install -q --no-build-isolation "$src"
"$PYTHON" -c "import cityflow; print('CityFlow installed:', cityflow.__file__)"

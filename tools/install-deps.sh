#!/usr/bin/env bash
# Installs the Debian 12 packages hookline needs, skipping those already present: what the main
# example needs, and with --test what the whole test suite needs too. Safe to run again; uses sudo
# when not root.
set -euo pipefail

# What the library and the main example need (tools/quickstart.sh).
packages=(
  cmake ninja-build g++ lld pkg-config
  libtorch-dev           # LibTorch 1.13 (CPU, with c10d and Gloo)
  libgloo-dev            # headers c10d's Gloo backend includes
  libopenblas0-openmp    # fast BLAS: Debian's LibTorch otherwise uses the reference BLAS
  libboost-dev
  libspdlog-dev
  libprotobuf-dev protobuf-compiler  # TensorBoard event files (loggers/tensorboard.proto)
  zlib1g-dev             # reads the gzip-compressed IDX files
  libpng-dev             # ImageFolder decodes PNG (core/data/image_folder.cpp)
  libturbojpeg0-dev      # ImageFolder decodes JPEG with libjpeg-turbo
  libxxhash-dev          # checkpoint checksums (XXH3)
  libcli11-dev           # the examples' and tools' command lines
  libyaml-cpp-dev        # recipe files (recipe/)
  dataset-fashion-mnist  # the main example's data, as a Debian package
)
# What the whole test suite adds (tools/check.sh: `install-deps.sh --test`).
if [ "${1:-}" = "--test" ]; then
  packages+=(
    libboost-test-dev      # the test runners (Boost.Test)
    libbenchmark-dev       # bench/
    nlohmann-json3-dev     # tools/: hookline-trace reads JSON lines; tests parse Chrome traces
    clang-19 libclang-rt-19-dev  # the asan preset: clang 19 (C++20 class-type template
                                 # arguments), libFuzzer, ASan and UBSan runtimes (test/fuzz)
    python3-torch          # the interop test: PyTorch 1.13 for /usr/bin/python3 (test/interop)
  )
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "install-deps: installing ${missing[*]}"
started=$SECONDS
$sudo apt-get update -qq
# Without the packages they only recommend: LibTorch's and clang's recommendations pull in
# hundreds of packages (GTK, systemd, LLVM's development files) that nothing here uses.
# dpkg's --force-unsafe-io skips the fsync after every unpacked file, as Debian's container images
# do: on a 2-core VM it halves the install (178 s -> 85 s for the quickstart's packages); the
# cost is that a power cut during the install can leave empty files in these packages
# (`apt-get install --reinstall` repairs them). HOOKLINE_SAFE_APT=1 keeps dpkg's default.
unsafe_io=(-o Dpkg::Options::=--force-unsafe-io)
[ "${HOOKLINE_SAFE_APT:-0}" = 1 ] && unsafe_io=()
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
  "${unsafe_io[@]}" "${missing[@]}" >/dev/null
echo "install-deps: done in $((SECONDS - started)) s"

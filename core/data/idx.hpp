// hookline: reader for IDX files, the format of MNIST and Fashion-MNIST.
//
// Contract: an IDX file is a 4-byte magic (0x00 0x00 <type> <ndims>), `ndims` big-endian uint32
// dimension sizes, then the elements, big-endian, row-major. `read_idx` accepts plain files and
// gzip-compressed ones (detected from the content, whatever the name) and returns a CPU tensor of
// the matching dtype and shape: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32,
// 0x0E float64. A missing or unreadable file, a bad magic, a truncated body or trailing bytes
// throw std::runtime_error naming the file and the problem.
#pragma once

#include <ATen/core/Tensor.h>

#include <filesystem>

namespace hookline::data {

/// Reads the IDX file at `path` (plain or gzip) into a tensor; see the contract above.
at::Tensor read_idx(const std::filesystem::path& path);

}  // namespace hookline::data

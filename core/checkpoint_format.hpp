// hookline: the archive inside a checkpoint file (internal to checkpoint_io.cpp and
// python_archive.cpp): checking and decoding the torch.save-format zip archive that
// torch::jit::pickle_save writes.
#pragma once

#include <ATen/core/ivalue.h>
#include <caffe2/serialize/read_adapter_interface.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace hookline::detail {

// A read adapter over bytes in memory that never reads past them. LibTorch's MemoryReadAdapter
// copies whatever its zip reader asks for, and a damaged archive directory asks for positions
// outside the payload (found by the mutation test under UBSan); a short read here makes the zip
// reader report the archive as damaged instead.
class BoundedReadAdapter final : public caffe2::serialize::ReadAdapterInterface {
 public:
  BoundedReadAdapter(const char* data, std::size_t size) : data_(data), size_(size) {}
  std::size_t size() const override { return size_; }
  std::size_t read(std::uint64_t pos, void* buf, std::size_t n, const char*) const override {
    if (pos >= size_) return 0;
    n = std::min<std::size_t>(n, size_ - static_cast<std::size_t>(pos));
    std::memcpy(buf, data_ + pos, n);
    return n;
  }

 private:
  const char* data_;
  std::size_t size_;
};

/// Decodes an archive hookline wrote (torch::jit::pickle_save's zip; anything after its end of
/// central directory, such as the seal, is ignored). Before LibTorch's unpickler sees the pickle,
/// it is checked to hold only what pickle_save writes, and every tensor is checked to lie in its
/// storage. Throws CheckpointError naming `path`; `earlier` ends its messages.
c10::IValue decode_archive(const std::vector<char>& archive, const std::string& path,
                           const std::string& earlier);

}  // namespace hookline::detail

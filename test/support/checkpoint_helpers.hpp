// Helpers shared by the checkpoint tests and the checkpoint fuzz target: copies of a model's
// tensors and their bitwise comparison, whole files as bytes, and the text of a CheckpointError.
#pragma once

#include <hookline/core/checkpoint_io.hpp>

#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace test_support {

/// Copies of a module's parameters, then its buffers, in registration order.
inline std::vector<at::Tensor> weights_of(const torch::nn::Module& module) {
  std::vector<at::Tensor> out;
  for (const auto& p : module.named_parameters()) out.push_back(p.value().detach().clone());
  for (const auto& b : module.named_buffers()) out.push_back(b.value().detach().clone());
  return out;
}

/// Whether two lists of tensors have the same shapes and the same values, element by element.
inline bool bitwise_equal(const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i].sizes() != b[i].sizes() || !at::equal(a[i], b[i])) return false;
  return true;
}

inline std::vector<char> read_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline void write_bytes(const std::filesystem::path& path, const std::vector<char>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

/// The message of the CheckpointError `f` throws, or "(no CheckpointError)".
template <class F>
std::string checkpoint_error_of(F&& f) {
  try {
    f();
  } catch (const hookline::CheckpointError& e) {
    return e.what();
  }
  return "(no CheckpointError)";
}

inline bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace test_support

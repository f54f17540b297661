#include <hookline/core/data/sample.hpp>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/EmptyTensor.h>
#include <ATen/ops/stack.h>
#include <c10/util/SmallVector.h>

#include <cstring>

#include <stdexcept>
#include <string>

namespace hookline::data {

namespace {
std::uint64_t mix(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}
}  // namespace

SampleGenerator::SampleGenerator(std::uint64_t seed, std::int64_t epoch, std::int64_t index)
    : state_(mix(mix(mix(seed + 0x9E3779B97F4A7C15ULL) ^ static_cast<std::uint64_t>(epoch)) ^
                 static_cast<std::uint64_t>(index))) {}

std::int64_t SampleGenerator::integer(std::int64_t low, std::int64_t high) {
  if (high <= low) return low;
  const auto span = static_cast<std::uint64_t>(high - low) + 1;
  if (span == 0) return static_cast<std::int64_t>(next());  // the full 64-bit range
  // Lemire's multiply-shift with rejection: unbiased.
  const std::uint64_t threshold = (0 - span) % span;
  for (;;) {
    const unsigned __int128 m = static_cast<unsigned __int128>(next()) * span;
    if (static_cast<std::uint64_t>(m) >= threshold) return low + static_cast<std::int64_t>(m >> 64);
  }
}

at::Generator SampleGenerator::torch_generator() {
  return at::make_generator<at::CPUGeneratorImpl>(next());
}

namespace {

// True when `parts` (of one shape, checked by the caller) can be stacked by copying their bytes:
// dense, contiguous CPU tensors of one dtype that need no autograd history.
bool copyable(const std::vector<at::Tensor>& parts) {
  const at::Tensor& first = parts.front();
  for (const at::Tensor& part : parts)
    if (!part.device().is_cpu() || part.layout() != c10::kStrided || !part.has_storage() ||
        part.requires_grad() || part.is_quantized() || part.is_conj() || part.is_neg() ||
        part.scalar_type() != first.scalar_type() || !part.is_contiguous())
      return false;
  return true;
}

// at::stack(parts) for copyable parts: one allocation and a memcpy per sample, without the
// dispatcher's unsqueeze per part that at::stack pays (about a microsecond each).
at::Tensor stack_by_copy(const std::vector<at::Tensor>& parts) {
  const at::Tensor& first = parts.front();
  c10::SmallVector<std::int64_t, 6> shape;
  shape.push_back(static_cast<std::int64_t>(parts.size()));
  shape.append(first.sizes().begin(), first.sizes().end());
  at::Tensor out(at::detail::empty_cpu(shape, first.scalar_type()));
  const std::size_t bytes = first.nbytes();
  if (bytes == 0) return out;
  auto* dst = static_cast<char*>(out.data_ptr());
  for (const at::Tensor& part : parts) {
    std::memcpy(dst, part.data_ptr(), bytes);
    dst += bytes;
  }
  return out;
}

}  // namespace

Batch stack_collate(std::vector<Batch>& samples) {
  if (samples.empty()) return Batch();
  const Batch& first = samples.front();
  Batch out;
  std::vector<at::Tensor> parts(samples.size());
  std::size_t f = 0;
  for (const auto& [name, tensor] : first) {
    for (std::size_t i = 0; i < samples.size(); ++i) {
      const Batch& sample = samples[i];
      // The same field at the same position (the usual case) costs one name comparison.
      const auto same = sample.begin() + static_cast<std::ptrdiff_t>(f);
      const bool aligned = sample.num_fields() == first.num_fields() && same->first == name;
      if (!aligned && (sample.num_fields() != first.num_fields() || !sample.contains(name)))
        throw std::invalid_argument("stack_collate: sample " + std::to_string(i) +
                                    " of the batch has other fields than sample 0 (missing '" +
                                    name + "'); every sample needs the same fields");
      const at::Tensor& part = aligned ? same->second : sample[name];
      if (part.sizes() != tensor.sizes())
        throw std::invalid_argument(
            "stack_collate: field '" + name + "' of sample " + std::to_string(i) + " has shape " +
            c10::str(part.sizes()) + " but sample 0's has " + c10::str(tensor.sizes()) +
            "; pass DataLoaderOptions::collate(...) to batch samples of different shapes");
      parts[i] = part;
    }
    out.set(name, copyable(parts) ? stack_by_copy(parts) : at::stack(parts));
    ++f;
  }
  return out;
}

Batch MapDataset::gather(const at::Tensor& indices) const {
  const std::int64_t* data = indices.data_ptr<std::int64_t>();
  std::vector<Batch> samples;
  samples.reserve(static_cast<std::size_t>(indices.numel()));
  for (std::int64_t i = 0, n = indices.numel(); i < n; ++i) {
    SampleGenerator rng(0, 0, data[i]);
    samples.push_back(get(data[i], rng));
  }
  return stack_collate(samples);
}

}  // namespace hookline::data

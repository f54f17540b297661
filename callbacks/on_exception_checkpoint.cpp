#include "hookline/callbacks/on_exception_checkpoint.hpp"

#include "hookline/core/trainer.hpp"

#include <filesystem>
#include <stdexcept>

namespace hookline {

OnExceptionCheckpoint::OnExceptionCheckpoint(std::string dirpath, std::string filename)
    : CheckpointCallback("on_exception_checkpoint"),
      dirpath_(std::move(dirpath)),
      filename_(std::move(filename)) {
  if (filename_.empty())
    throw std::invalid_argument("OnExceptionCheckpoint: the filename cannot be empty");
}

std::string OnExceptionCheckpoint::ckpt_path() const {
  return (std::filesystem::path(dirpath_) / (filename_ + kExtension)).string();
}

void OnExceptionCheckpoint::on_exception(Trainer& trainer, Module&, const std::exception_ptr&) {
  trainer.save_checkpoint(ckpt_path());
}

void OnExceptionCheckpoint::teardown(Trainer& trainer, Module&, Stage) {
  trainer.wait_for_checkpoint();
  std::error_code ignored;
  std::filesystem::remove(ckpt_path(), ignored);
}

}  // namespace hookline

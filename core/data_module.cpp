#include "hookline/core/data_module.hpp"

#include "hookline/core/checkpoint.hpp"
#include "hookline/events/bus.hpp"

namespace hookline {

void DataModule::subscribe(Sink& sink) {
  const auto opts = [&] { return SubscribeOptions().named(name_).priority(band::data_module); };
  sink.on<PrepareData>([this] { prepare_data(); }, opts());
  sink.on<Setup>([this](const Setup& e) { setup(e.stage); }, opts());
  sink.on<Teardown>([this](const Teardown& e) { teardown(e.stage); }, opts());
  sink.on<TrainDataloader>([this](TrainDataloader& e) { e.loaders = train_dataloader(); }, opts());
  sink.on<ValDataloader>([this](ValDataloader& e) { e.loaders = val_dataloader(); }, opts());
  sink.on<TestDataloader>([this](TestDataloader& e) { e.loaders = test_dataloader(); }, opts());
  sink.on<PredictDataloader>([this](PredictDataloader& e) { e.loaders = predict_dataloader(); },
                             opts());
  const BatchHooks hooks = batch_hooks();
  if (hooks.on_before_batch_transfer)
    sink.on<BeforeBatchTransfer>(
        [this](BeforeBatchTransfer& e) {
          e.batch = on_before_batch_transfer(std::move(e.batch), e.dataloader_idx);
        },
        opts());
  if (hooks.transfer_batch_to_device)
    sink.on<TransferBatchToDevice>(
        [this](TransferBatchToDevice& e) {
          e.batch = transfer_batch_to_device(std::move(e.batch), e.device, e.dataloader_idx);
        },
        opts());
  if (hooks.on_after_batch_transfer)
    sink.on<AfterBatchTransfer>(
        [this](AfterBatchTransfer& e) {
          e.batch = on_after_batch_transfer(std::move(e.batch), e.dataloader_idx);
        },
        opts());
  // The data module's state lives in checkpoint[name()] (only when non-empty). Lightning restores
  // it right after the module's on_load_checkpoint, which is where LoadCheckpoint's order puts it.
  sink.on<StateDict>(
      [this](const StateDict& e) {
        Checkpoint mine;
        state_dict(mine);
        if (!mine.empty()) e.checkpoint->set(name_, mine.to_ivalue());
      },
      opts());
  sink.on<LoadCheckpoint>(
      [this](const LoadCheckpoint& e) {
        if (e.checkpoint->contains(name_))
          load_state_dict(Checkpoint::from_ivalue(e.checkpoint->at(name_),
                                                  "the state of data module '" + name_ + "'"));
      },
      opts());
}

}  // namespace hookline

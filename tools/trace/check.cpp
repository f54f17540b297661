#include "check.hpp"

#include <algorithm>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string_view>

namespace hookline::trace_tool {

namespace {

// Every Lightning hook the trainer emits (hooks/hooks.hpp). Other names are user events.
const std::set<std::string_view, std::less<>>& lightning_hooks() {
  static const std::set<std::string_view, std::less<>> hooks = {"prepare_data",
                                                                "configure_model",
                                                                "configure_sharded_model",
                                                                "on_fit_start",
                                                                "on_fit_end",
                                                                "on_sanity_check_start",
                                                                "on_sanity_check_end",
                                                                "on_train_start",
                                                                "on_train_end",
                                                                "on_validation_start",
                                                                "on_validation_end",
                                                                "on_test_start",
                                                                "on_test_end",
                                                                "on_predict_start",
                                                                "on_predict_end",
                                                                "setup",
                                                                "teardown",
                                                                "configure_callbacks",
                                                                "configure_optimizers",
                                                                "on_exception",
                                                                "on_train_epoch_start",
                                                                "on_train_epoch_end",
                                                                "on_validation_epoch_start",
                                                                "on_validation_epoch_end",
                                                                "on_test_epoch_start",
                                                                "on_test_epoch_end",
                                                                "on_predict_epoch_start",
                                                                "on_predict_epoch_end",
                                                                "on_validation_model_zero_grad",
                                                                "on_validation_model_eval",
                                                                "on_validation_model_train",
                                                                "on_test_model_eval",
                                                                "on_test_model_train",
                                                                "on_predict_model_eval",
                                                                "train_dataloader",
                                                                "val_dataloader",
                                                                "test_dataloader",
                                                                "predict_dataloader",
                                                                "on_before_batch_transfer",
                                                                "transfer_batch_to_device",
                                                                "on_after_batch_transfer",
                                                                "on_train_batch_start",
                                                                "on_train_batch_end",
                                                                "on_validation_batch_start",
                                                                "on_validation_batch_end",
                                                                "on_test_batch_start",
                                                                "on_test_batch_end",
                                                                "on_predict_batch_start",
                                                                "on_predict_batch_end",
                                                                "training_step",
                                                                "validation_step",
                                                                "test_step",
                                                                "predict_step",
                                                                "on_before_zero_grad",
                                                                "optimizer_zero_grad",
                                                                "on_before_backward",
                                                                "backward",
                                                                "on_after_backward",
                                                                "on_before_optimizer_step",
                                                                "configure_gradient_clipping",
                                                                "optimizer_step",
                                                                "lr_scheduler_step",
                                                                "state_dict",
                                                                "load_state_dict",
                                                                "on_save_checkpoint",
                                                                "on_load_checkpoint"};
  return hooks;
}

bool is_save(std::string_view name) {
  return name == "state_dict" || name == "on_save_checkpoint";
}

struct Node {
  const Record* r = nullptr;
  std::string_view name;
  std::vector<Node*> kids;  // Lightning hooks nested in this emission, checkpoint saves left out
};

struct Violation {
  const Record* at;
  std::string message;
};
struct RunEnds {};    // on_exception at the top level: the run ends here
struct Truncated {};  // an aborted emission's nested hooks stop early

std::string describe(const Record& record) {
  const TraceRecord& r = record.view();
  std::string s = "seq " + std::to_string(r.seq);
  if (!r.stage.empty()) s.append(", stage ").append(r.stage);
  if (r.epoch != TraceRecord::kNone) s += ", epoch " + std::to_string(r.epoch);
  if (r.global_step != TraceRecord::kNone) s += ", global_step " + std::to_string(r.global_step);
  if (r.batch_idx != TraceRecord::kNone) s += ", batch_idx " + std::to_string(r.batch_idx);
  if (r.dataloader_idx != TraceRecord::kNone)
    s += ", dataloader_idx " + std::to_string(r.dataloader_idx);
  if (r.verdict != Action::Continue) s.append(", verdict ").append(to_string(r.verdict));
  if (r.aborted) s += ", aborted";
  return s;
}

std::string join(std::initializer_list<std::string_view> names) {
  std::string out;
  std::size_t i = 0;
  for (auto n : names) {
    if (i > 0) out += i + 1 == names.size() ? " or " : ", ";
    out += "'" + std::string(n) + "'";
    ++i;
  }
  return out;
}

class Checker;

// A position in one level of the emission tree: the top-level hooks of a rank's trace, or the
// hooks nested in one emission (`owner`).
class Cursor {
 public:
  Cursor(const std::vector<Node*>& items, const Node* owner, Checker& checker)
      : items_(items), owner_(owner), checker_(checker) {}

  Node* peek() {
    if (pos_ >= items_.size()) return nullptr;
    Node* n = items_[pos_];
    if (owner_ == nullptr && n->name == "on_exception") throw RunEnds{};
    return n;
  }
  Node* peek_raw() const { return pos_ < items_.size() ? items_[pos_] : nullptr; }
  bool done() const { return pos_ >= items_.size(); }
  bool at(std::string_view name) {
    Node* n = peek();
    return n != nullptr && n->name == name;
  }
  Node* advance();
  Node* take_if(std::string_view name) { return at(name) ? advance() : nullptr; }
  Node* take(std::string_view name) { return expect({name}); }
  Node* expect(std::initializer_list<std::string_view> names) {
    if (Node* n = peek())
      for (auto name : names)
        if (n->name == name) return advance();
    fail(names);
  }
  [[noreturn]] void fail(std::initializer_list<std::string_view> names, std::string why = {});
  Node* last() const { return last_; }
  const Node* owner() const { return owner_; }

 private:
  const std::vector<Node*>& items_;
  const Node* owner_;
  Checker& checker_;
  std::size_t pos_ = 0;
  Node* last_ = nullptr;
};

class Checker {
 public:
  Checker(std::string stage_hint, std::int32_t rank)
      : run_stage_(std::move(stage_hint)), rank_(rank) {}

  void check_top(const std::vector<Node*>& top, CheckResult& result) {
    Cursor c(top, nullptr, *this);
    while (!c.done()) {
      if (c.peek_raw()->name == "on_exception") {  // a run that failed before its first hook
        c.advance();
        ++result.runs;
        result.stages.push_back("?");
        continue;
      }
      run_stage_.clear();
      resumed_ = false;
      try {
        run(c);
      } catch (const RunEnds&) {
        c.advance();  // on_exception
      }
      ++result.runs;
      result.stages.push_back(run_stage_.empty() ? "?" : run_stage_);
    }
  }

  // The hooks nested in `n`.
  void check_nested(Node* n) {
    if (n->kids.empty()) return;
    Cursor k(n->kids, n, *this);
    try {
      if (n->name == "optimizer_step") {
        closure(k, true);
      } else if (n->name == "training_step") {
        // Manual optimization: manual_backward and optimizer steps, in any number.
        while (!k.done()) {
          if (k.take_if("on_before_backward")) {
            k.take("backward");
            k.take("on_after_backward");
          } else {
            k.expect({"on_before_backward", "on_before_optimizer_step"});
          }
        }
      }
      if (!k.done()) {
        Node* extra = k.peek_raw();
        throw Violation{extra->r, "'" + std::string(extra->name) + "' ran inside '" +
                                      std::string(n->name) + "' (line " +
                                      std::to_string(n->r->line) +
                                      "); only checkpoint saves and user events may nest there"};
      }
    } catch (const Truncated&) {
      // An aborted emission: its nested hooks stop where the exception was thrown.
    }
  }

  void consumed(Node* n) { history_.push_back(n); }
  const std::vector<Node*>& history() const { return history_; }
  const std::string& stage() const { return run_stage_; }

 private:
  void lr_steps(Cursor& c) {
    while (c.take_if("lr_scheduler_step")) {
    }
  }

  void run(Cursor& c) {
    Node* first = c.take("configure_callbacks");
    run_stage_ = first->r->view().stage;
    // prepare_data runs on rank 0 (Lightning: on each node's local rank 0).
    if (rank_ == 0)
      c.take("prepare_data");
    else
      c.take_if("prepare_data");
    c.take("setup");
    c.take("configure_sharded_model");
    c.take("configure_model");
    if (c.take_if("on_load_checkpoint")) {
      resumed_ = true;
      c.take_if("load_state_dict");
    }
    if (run_stage_.empty()) {
      if (c.at("configure_optimizers"))
        run_stage_ = "fit";
      else if (c.at("val_dataloader"))
        run_stage_ = "validate";
      else if (c.at("test_dataloader"))
        run_stage_ = "test";
      else if (c.at("predict_dataloader"))
        run_stage_ = "predict";
      else
        c.fail({"configure_optimizers", "val_dataloader", "test_dataloader", "predict_dataloader"});
    }
    if (run_stage_ == "fit") {
      fit(c);
    } else if (run_stage_ == "validate") {
      c.take("val_dataloader");
      if (c.at("on_validation_model_eval")) eval_loop(c, kValidation);
    } else if (run_stage_ == "test") {
      c.take("test_dataloader");
      if (c.at("on_test_model_eval")) eval_loop(c, kTest);
    } else if (run_stage_ == "predict") {
      c.take("predict_dataloader");
      if (c.at("on_predict_model_eval")) eval_loop(c, kPredict);
    } else {
      throw Violation{
          first->r, "unknown stage '" + run_stage_ + "'; expected fit, validate, test or predict"};
    }
    c.take("teardown");
  }

  void fit(Cursor& c) {
    c.take("configure_optimizers");
    c.take("on_fit_start");
    if (c.take_if("on_sanity_check_start")) {
      c.take_if("val_dataloader");
      if (c.at("on_validation_model_eval")) eval_loop(c, kValidation);
      c.take("on_sanity_check_end");
    }
    c.take("train_dataloader");
    c.take_if("val_dataloader");
    if (c.take_if("on_train_start")) {
      lr_steps(c);  // a run resumed after an epoch's end finishes that epoch first
      for (;;) {
        if (c.take_if("on_train_end")) break;
        if (c.at("train_dataloader") || c.at("on_train_epoch_start"))
          epoch(c);
        else
          c.fail({"on_train_epoch_start", "on_train_end"});
      }
    }
    c.take("on_fit_end");
  }

  void epoch(Cursor& c) {
    c.take_if("train_dataloader");  // reload_dataloaders_every_n_epochs
    c.take("on_train_epoch_start");
    tail(c);  // a run resumed in the middle of a batch finishes that batch first
    std::optional<std::int64_t> previous;
    bool cut = false;
    while (!cut && c.at("on_before_batch_transfer")) cut = train_batch(c, previous);
    if (!c.at("on_train_epoch_end")) {
      if (cut)
        c.fail({"on_train_epoch_end"},
               "on_train_batch_start returned SkipRestOfEpoch (Lightning's -1): the epoch ends");
      c.fail({"on_before_batch_transfer", "on_train_epoch_end"});
    }
    c.advance();
    lr_steps(c);
  }

  // One training batch; returns true when it ends the epoch (SkipRestOfEpoch).
  bool train_batch(Cursor& c, std::optional<std::int64_t>& previous) {
    transfer(c);
    Node* start = c.take("on_train_batch_start");
    const std::int64_t idx = start->r->view().batch_idx;
    if (idx != TraceRecord::kNone) {
      const bool first_ok = previous ? idx == *previous + 1 : (idx == 0 || resumed_);
      if (!first_ok)
        throw Violation{start->r, "on_train_batch_start has batch_idx " + std::to_string(idx) +
                                      (previous ? " after batch_idx " + std::to_string(*previous)
                                                : std::string(" as the epoch's first batch")) +
                                      "; batches run in order from 0"};
      previous = idx;
    }
    const Action verdict = start->r->view().verdict;
    if (verdict == Action::SkipRestOfEpoch) return true;
    if (verdict != Action::SkipBatch) {
      step(c);
      if (!c.at("on_train_batch_end")) c.fail({"on_train_batch_end"}, "the batch's step is over");
      Node* end = c.advance();
      same_batch(start, end);
    }
    tail(c);
    return false;
  }

  void step(Cursor& c) {
    if (c.take_if("optimizer_step")) {  // its closure's hooks are nested in it
      lr_steps(c);
      return;
    }
    if (Node* step = c.take_if("training_step")) {
      if (!step->kids.empty()) return;  // manual optimization
      closure_rest(c, false);           // accumulating: the closure runs without a step
      return;
    }
    c.fail({"optimizer_step", "training_step"}, "on_train_batch_start let the batch run");
  }

  void closure(Cursor& c, bool stepping) {
    c.take("training_step");
    closure_rest(c, stepping);
  }

  void closure_rest(Cursor& c, bool stepping) {
    if (c.take_if("on_before_zero_grad")) c.take("optimizer_zero_grad");
    if (c.take_if("on_before_backward")) {
      c.take("backward");
      c.take("on_after_backward");
    }
    if (stepping) {
      c.take("on_before_optimizer_step");
      c.take("configure_gradient_clipping");
    }
  }

  // After on_train_batch_end (or a skipped batch): the validation check, plateau schedulers.
  void tail(Cursor& c) {
    c.take_if("on_validation_model_zero_grad");
    c.take_if("val_dataloader");
    if (c.at("on_validation_model_eval")) eval_loop(c, kValidation);
    lr_steps(c);
  }

  void transfer(Cursor& c) {
    c.take("on_before_batch_transfer");
    c.take("transfer_batch_to_device");
    c.take("on_after_batch_transfer");
  }

  struct EvalHooks {
    std::string_view model_eval, start, epoch_start, batch_start, step, batch_end, epoch_end, end,
        model_train;
  };
  static constexpr EvalHooks kValidation{
      "on_validation_model_eval",  "on_validation_start", "on_validation_epoch_start",
      "on_validation_batch_start", "validation_step",     "on_validation_batch_end",
      "on_validation_epoch_end",   "on_validation_end",   "on_validation_model_train"};
  static constexpr EvalHooks kTest{"on_test_model_eval",  "on_test_start", "on_test_epoch_start",
                                   "on_test_batch_start", "test_step",     "on_test_batch_end",
                                   "on_test_epoch_end",   "on_test_end",   "on_test_model_train"};
  static constexpr EvalHooks kPredict{
      "on_predict_model_eval",  "on_predict_start", "on_predict_epoch_start",
      "on_predict_batch_start", "predict_step",     "on_predict_batch_end",
      "on_predict_epoch_end",   "on_predict_end",   ""};

  void eval_loop(Cursor& c, const EvalHooks& h) {
    c.take(h.model_eval);
    c.take(h.start);
    c.take(h.epoch_start);
    std::int64_t loader = -1, previous = -1;
    while (c.at("on_before_batch_transfer")) {
      transfer(c);
      Node* start = c.take(h.batch_start);
      const std::int64_t dl = start->r->view().dataloader_idx, idx = start->r->view().batch_idx;
      if (idx != TraceRecord::kNone) {
        const std::int64_t d = dl == TraceRecord::kNone ? 0 : dl;
        const bool ok = d == loader ? idx == previous + 1 : d > loader && idx == 0;
        if (!ok)
          throw Violation{start->r, std::string(h.batch_start) + " has dataloader_idx " +
                                        std::to_string(d) + ", batch_idx " + std::to_string(idx) +
                                        " after dataloader_idx " + std::to_string(loader) +
                                        ", batch_idx " + std::to_string(previous) +
                                        "; loaders run in order, their batches from 0"};
        loader = d;
        previous = idx;
      }
      if (start->r->view().verdict == Action::SkipBatch) continue;
      c.take(h.step);
      Node* end = c.take(h.batch_end);
      same_batch(start, end);
    }
    c.expect({h.epoch_end, "on_before_batch_transfer"});
    c.take(h.end);
    if (!h.model_train.empty()) c.take(h.model_train);
  }

  static void same_batch(const Node* start, const Node* end) {
    if (start->r->view().batch_idx != TraceRecord::kNone &&
        end->r->view().batch_idx != TraceRecord::kNone &&
        (start->r->view().batch_idx != end->r->view().batch_idx ||
         start->r->view().dataloader_idx != end->r->view().dataloader_idx))
      throw Violation{end->r, std::string(end->name) + " has batch_idx " +
                                  std::to_string(end->r->view().batch_idx) + " but its " +
                                  std::string(start->name) + " (line " +
                                  std::to_string(start->r->line) + ") had batch_idx " +
                                  std::to_string(start->r->view().batch_idx)};
  }

  std::string run_stage_;
  std::int32_t rank_ = 0;
  bool resumed_ = false;
  std::vector<Node*> history_;
};

Node* Cursor::advance() {
  Node* n = items_[pos_++];
  last_ = n;
  checker_.consumed(n);
  checker_.check_nested(n);
  return n;
}

void Cursor::fail(std::initializer_list<std::string_view> names, std::string why) {
  Node* n = peek_raw();
  if (n == nullptr && owner_ != nullptr && owner_->r->view().aborted) throw Truncated{};
  std::string where;
  if (last_ != nullptr)
    where =
        " after '" + std::string(last_->name) + "' (line " + std::to_string(last_->r->line) + ")";
  else if (owner_ != nullptr)
    where = " first inside '" + std::string(owner_->name) + "'";
  std::string message;
  if (n == nullptr) {
    if (owner_ != nullptr)
      message = "'" + std::string(owner_->name) + "' (line " + std::to_string(owner_->r->line) +
                ") ended without its nested " + join(names) + where;
    else
      message = "the trace ends inside a " +
                (checker_.stage().empty() ? std::string("run") : checker_.stage() + " run") +
                ": expected " + join(names) + where;
    throw Violation{last_ ? last_->r : owner_ ? owner_->r : nullptr, message};
  }
  message = "hook out of order: expected " + join(names) + where + ", found '" +
            std::string(n->name) + "'";
  if (!why.empty()) message += " (" + why + ")";
  throw Violation{n->r, message};
}

}  // namespace

CheckResult check_trace(const std::vector<Record>& records, const std::string& file) {
  CheckResult result;
  // Emit records by (rank, bus), in seq (start) order.
  std::map<std::pair<std::int32_t, std::uint32_t>, std::vector<const Record*>> groups;
  for (const auto& r : records)
    if (r.is_emit()) groups[{r.view().rank, r.view().bus}].push_back(&r);
  if (groups.empty()) {
    result.ok = false;
    result.message = file + ": no emit records to check (is this a hookline trace?)";
    return result;
  }
  const auto& hooks = lightning_hooks();
  for (auto& [key, list] : groups) {
    std::stable_sort(list.begin(), list.end(), [](const Record* a, const Record* b) {
      return a->view().seq < b->view().seq;
    });
    std::vector<std::unique_ptr<Node>> nodes;
    std::map<std::uint64_t, Node*> by_seq;
    std::vector<Node*> top;
    std::vector<std::vector<Node*>*> raw_levels{&top};
    for (const Record* r : list) {
      auto node = std::make_unique<Node>();
      node->r = r;
      node->name = r->view().event;
      Node* n = node.get();
      nodes.push_back(std::move(node));
      by_seq[r->view().seq] = n;
      auto parent = r->view().parent != 0 ? by_seq.find(r->view().parent) : by_seq.end();
      std::vector<Node*>& level = parent != by_seq.end() ? parent->second->kids : top;
      level.push_back(n);
      raw_levels.push_back(&n->kids);
    }
    try {
      // Checkpoint saves (state_dict, then on_save_checkpoint) may come anywhere; user events
      // are not checked. Both leave the levels the grammar sees.
      for (std::vector<Node*>* level : raw_levels) {
        for (std::size_t i = 0; i < level->size(); ++i) {
          Node* n = (*level)[i];
          if (n->name != "state_dict") continue;
          std::size_t j = i + 1;
          while (j < level->size() && !hooks.count((*level)[j]->name)) ++j;
          if (!n->r->view().aborted &&
              (j == level->size() || (*level)[j]->name != "on_save_checkpoint"))
            throw Violation{n->r, "state_dict is not followed by on_save_checkpoint"};
        }
        std::erase_if(*level,
                      [&](const Node* n) { return is_save(n->name) || !hooks.count(n->name); });
      }
      Checker checker("", key.first);
      try {
        checker.check_top(top, result);
      } catch (const Violation& v) {
        result.ok = false;
        std::string text = file;
        if (v.at) text += ":" + std::to_string(v.at->line);
        text += ": " + v.message + "\n";
        if (v.at) text += "  at " + describe(*v.at) + "\n";
        const auto& history = checker.history();
        const std::size_t from = history.size() > 6 ? history.size() - 6 : 0;
        if (from < history.size()) text += "  preceding hooks:\n";
        for (std::size_t i = from; i < history.size(); ++i)
          text += "    line " + std::to_string(history[i]->r->line) + ": " +
                  std::string(history[i]->name) + " (" + describe(*history[i]->r) + ")\n";
        result.message = text;
        return result;
      }
    } catch (const Violation& v) {
      result.ok = false;
      result.message = file + (v.at ? ":" + std::to_string(v.at->line) : "") + ": " + v.message;
      return result;
    }
    result.emissions += list.size();
  }
  return result;
}

}  // namespace hookline::trace_tool

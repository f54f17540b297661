#include "hookline/events/verdict.hpp"

namespace hookline {

std::string_view to_string(Action action) {
  switch (action) {
    case Action::Continue:
      return "Continue";
    case Action::SkipBatch:
      return "SkipBatch";
    case Action::SkipRestOfEpoch:
      return "SkipRestOfEpoch";
    case Action::StopFit:
      return "StopFit";
  }
  return "Unknown";
}

std::string ActionSet::describe() const {
  std::string out;
  for (Action a : {Action::SkipBatch, Action::SkipRestOfEpoch, Action::StopFit}) {
    if (bits_ & bit(a)) out += (out.empty() ? "" : ", ") + std::string(to_string(a));
  }
  return out.empty() ? "none" : out;
}

}  // namespace hookline

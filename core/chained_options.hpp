// hookline: chainable options, for TrainerOptions and the built-in callbacks' option classes.
//
//   class EarlyStoppingOptions {
//     HOOKLINE_CHAINED_OPTION(EarlyStoppingOptions, std::int64_t, patience, 3)
//   };
//   EarlyStoppingOptions().patience(5).patience();  // 5
#pragma once

#include <utility>

#define HOOKLINE_CHAINED_OPTION(Self, type, name, init) \
 public:                                                \
  Self& name(type value) {                              \
    name##_ = std::move(value);                         \
    return *this;                                       \
  }                                                     \
  const type& name() const {                            \
    return name##_;                                     \
  }                                                     \
                                                        \
 private:                                               \
  type name##_ = init;

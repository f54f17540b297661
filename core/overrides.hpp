// hookline: whether an object's class overrides a virtual hook (Lightning's `is_overridden`).
//
// A per-batch hook of a module or a callback that its class leaves at the default does nothing,
// so the trainer subscribes it for traced emissions only (SubscribeOptions::only_when_traced):
// a trace still shows every call Lightning makes, and an untraced step does not pay for it.
// C++ has no portable way to ask whether a class overrides a hook, so this reads the answer where
// the Itanium C++ ABI (GCC and Clang on Linux and macOS) puts it: a pointer to a virtual member
// function holds the function's offset in the virtual table, and the object's virtual table holds
// its final overrider there. On any other ABI every hook counts as overridden, which is always
// correct, only slower.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace hookline::detail {

#if (defined(__GNUC__) || defined(__clang__)) && !defined(_MSC_VER) && \
    (defined(__x86_64__) || defined(__i386__) || defined(__aarch64__))
inline constexpr bool can_see_overrides = true;
#else
inline constexpr bool can_see_overrides = false;
#endif

/// The function `object`'s virtual table holds for the virtual member function `hook` of `Base`,
/// or null when `hook` is not virtual or the ABI is not one we can read.
template <class Base, class Hook>
const void* final_overrider(const Base& object, Hook Base::*hook) {
  if constexpr (!can_see_overrides) {
    return nullptr;
  } else {
    struct Representation {  // Itanium: a pointer to member function is {ptr, adj}
      std::uintptr_t ptr;
      std::ptrdiff_t adj;
    };
    static_assert(sizeof(hook) == sizeof(Representation));
    Representation rep;
    std::memcpy(&rep, &hook, sizeof rep);
#if defined(__aarch64__)
    // ARM's variant: the virtual flag is the low bit of adj, ptr is the offset itself.
    if ((rep.adj & 1) == 0) return nullptr;
    const std::uintptr_t offset = rep.ptr;
    const std::ptrdiff_t adjust = rep.adj >> 1;
#else
    if ((rep.ptr & 1) == 0) return nullptr;
    const std::uintptr_t offset = rep.ptr - 1;
    const std::ptrdiff_t adjust = rep.adj;
#endif
    const char* self = reinterpret_cast<const char*>(&object) + adjust;
    const char* vtable = nullptr;
    std::memcpy(&vtable, self, sizeof vtable);
    const void* function = nullptr;
    std::memcpy(&function, vtable + offset, sizeof function);
    return function;
  }
}

/// One object of `Plain`, made on first use and never destroyed (no static destruction order).
template <class Plain, class Base>
const Base& plain_object() {
  static const Base* const plain = new Plain();
  return *plain;
}

/// Whether the class of `object` overrides the virtual `hook` of `Base`, judged against an object
/// of `Plain`, a default-constructible class derived from `Base` (or `Base` itself) that does
/// not. True when it cannot be told.
template <class Plain, class Base, class Hook>
bool overrides(const Base& object, Hook Base::*hook) {
  const void* mine = final_overrider(object, hook);
  return mine == nullptr || mine != final_overrider(plain_object<Plain, Base>(), hook);
}

}  // namespace hookline::detail

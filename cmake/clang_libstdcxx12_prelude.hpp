// Included first in every translation unit when clang compiles against GCC 12's libstdc++ with
// LibTorch (the `asan` preset). In C++20, libstdc++ 12 makes std::vector constexpr, and clang
// then instantiates ~vector<c10::IValue> where LibTorch's ATen/core/List.h has only declared
// c10::IValue ("arithmetic on a pointer to an incomplete type"); GCC instantiates it later and is
// fine. Compiling the standard library's C++20 constexpr members as plain inline functions
// removes the eager instantiation: nothing in hookline evaluates a container at compile time,
// and the symbols and layouts are the same.
#pragma once

#include <bits/c++config.h>
#undef _GLIBCXX20_CONSTEXPR
#define _GLIBCXX20_CONSTEXPR
#include <type_traits>
#include <version>
// std::string's constexpr members follow this macro instead of _GLIBCXX20_CONSTEXPR.
#undef __cpp_lib_is_constant_evaluated

// {fmt} (through spdlog) makes its buffers constexpr in C++20 on top of std::allocator.
#if __has_include(<fmt/core.h>)
#include <fmt/core.h>
#undef FMT_CONSTEXPR20
#define FMT_CONSTEXPR20
#endif

#pragma once
// How many single-character edits (insert, delete, replace) turn one word into another
// (Levenshtein): what "did you mean" measures a mistyped command by.

#include <cstddef>
#include <string_view>

namespace vfio_hook {

std::size_t edit_distance(std::string_view a, std::string_view b);

}  // namespace vfio_hook

#pragma once
// What a hook.d prepare script is there to clear before vfio-hook looks at who holds the GPU,
// told from the script's name and text: the examples in hook.d/ (stop-display-manager,
// stop-nvidia-persistenced) and scripts written after them. `check` runs no script, so it
// counts the holders such a script takes away as cleared by it instead of as refusals.

#include <string_view>
#include <vector>

#include "core/plan.hpp"

namespace vfio_hook {

enum class ScriptClears {
    // Stops the display manager: its X server or compositor lets go of the GPU's DRM and
    // framebuffer nodes. hook.d/stop-display-manager then waits until nothing holds the DRM
    // nodes and fails (refusing the start itself) when something still does.
    display_manager,
    // Stops nvidia-persistenced, which keeps every NVIDIA GPU open.
    nvidia_persistenced,
};

// From the script's file name and (the start of) its text; empty when it is none of these.
std::vector<ScriptClears> what_script_clears(std::string_view file_name, std::string_view text);

// Whether a process holding a node of the GPU is one that such a script takes away.
bool clears(ScriptClears what, const Holder& holder);

}  // namespace vfio_hook

#pragma once
// Whether a PCI function still answers, judged from a live read of its config space: what a
// give-back checks before it hands a device to its host driver (probing a dead GPU can hang or
// crash that driver). Pure: the boundary (host/liveness_reader) reads the bytes.

#include <optional>
#include <string>
#include <string_view>

namespace vfio_hook {

struct Liveness {
    // alive: it answered; gone: it did not (all ones); unknown: no config space could be read.
    enum class State { alive, gone, unknown };
    State state = State::unknown;
    std::optional<unsigned> power_state;  // PMCSR bits 1:0 (0 = D0 … 3 = D3hot), when it has a PM capability
    std::string why;                      // "its config space reads vendor 0xffff", for messages

    // Whether the give-back may probe the host driver. `strict` (after a crashed guest or a
    // killed daemon) wants proof of life: a config space that cannot be read counts as dead too.
    bool may_go_home(bool strict) const {
        return state == State::alive || (state == State::unknown && !strict);
    }
    std::string power_state_name() const;  // "D0" … "D3hot", "" when unknown
};

// The sysfs `config` file's bytes. The kernel answers a read of a function that does not
// respond with all ones (vendor 0xffff, header type 0x7f in its low bits); the `vendor` file is
// cached at enumeration and never shows that. A read of `config` resumes a device the kernel
// believes in D3cold first (pci-sysfs.c `pci_config_pm_runtime_get`); one in D3hot answers as
// it is, so D3hot (where vfio-pci parks an idle device) is alive, reported, not judged.
Liveness judge_config_space(std::string_view bytes);

// Whether every method in `reset_method` ("flr bus") resets this function alone: device_specific,
// acpi, flr, af_flr and pm do; bus and cxl_bus reset the whole secondary bus (every function
// behind the bridge), so writing `reset` is then not a step to take on the user's behalf.
bool reset_is_per_function(std::string_view reset_methods);

}  // namespace vfio_hook

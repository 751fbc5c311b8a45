#pragma once
// The power guard: keeps a device on vfio-pci awake while it waits for QEMU, and puts its runtime
// power settings back once its host driver has it again (issue 26, point 1).
//
// Kernel facts (drivers/vfio/pci/vfio_pci_core.c, drivers/base/power/sysfs.c, pci-sysfs.c):
// vfio-pci (since 5.19) calls pm_runtime_allow() at bind, so `power/control` turns `auto` and an
// idle device may drop to D3cold, from which some GPUs never wake ("Unable to change power state
// from D3cold to D0", RX 9000, 2025-26); its unbind calls pm_runtime_forbid(), leaving `on`
// whatever the value was before. Writing `power/control` takes the device lock, so it blocks
// behind a stuck unbind: every write here runs under the write deadline. `d3cold_allowed` exists
// only with CONFIG_PM + CONFIG_ACPI; writing it wakes the device.

#include "core/problem.hpp"
#include "core/state_record.hpp"
#include "host/host_paths.hpp"
#include "host/kernel_interface.hpp"

namespace vfio_hook {

// Reads `power/control` and `d3cold_allowed` into the record (absent files stay nullopt).
void record_power_settings(const HostPaths& paths, RecordedDevice& device);

// Before the vfio bind: `d3cold_allowed` = 0, where it exists and is 1. vfio-pci's idle suspend
// runs the moment its bind returns (the bind's pm_runtime_put()), before any write after the
// bind can land, so `power/control` = on alone would come too late: it would itself be the wake
// from D3cold that such a GPU does not survive. With no_d3cold set (pci_d3cold_disable())
// acpi_pci_choose_state() stops at D3hot, which every device leaves. vfio-pci never writes this
// attribute. A problem when the write failed (a warning, as for keep_awake).
Problem forbid_d3cold(const HostPaths& paths, KernelInterface& kernel, const PciAddress& address);

// After the vfio bind: `power/control` = on. A problem when the write failed (a warning: the
// device is on vfio-pci all the same).
Problem keep_awake(const HostPaths& paths, KernelInterface& kernel, const PciAddress& address);

// After the host driver is back: the recorded values, where they differ from what is there now.
// A record written before the guard existed holds none: nothing is written then.
Problem restore_power_settings(const HostPaths& paths, KernelInterface& kernel, const RecordedDevice* device);

}  // namespace vfio_hook

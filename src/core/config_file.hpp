#pragma once
// The global config file, /etc/vfio-hook/vfio-hook.conf: `key = value` lines whose keys are the
// long command-line options, so a setting has one name everywhere. Errors name file:line.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/expected.hpp"
#include "core/settings.hpp"
#include "core/problem.hpp"

namespace vfio_hook {

struct ConfigKey {
    std::string_view name;
    std::string_view meaning;
    bool is_flag = false;  // on the command line a bare --KEY means yes
};

// Every key the file accepts, in the order `--help` and the man page list them.
const std::vector<ConfigKey>& config_keys();

// Applies the file's settings over `base`. `source` names the file in errors.
Expected<Settings> parse_config_file(std::string_view text, const std::string& source,
                                     Settings base = {});

// Applies one key (also used for command-line overrides); error text without file:line.
Problem apply_setting(Settings& settings, std::string_view key, std::string_view value);

}  // namespace vfio_hook

#include "host/scripts.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <memory>
#include <utility>

#include "host/log.hpp"

extern char** environ;

namespace vfio_hook {
namespace fs = std::filesystem;
namespace {

using Clock = std::chrono::steady_clock;

std::optional<EntryInfo> stat_entry(const fs::path& path) {
    struct stat info;
    if (::lstat(path.c_str(), &info) != 0) return std::nullopt;
    return EntryInfo{path.string(), static_cast<unsigned>(info.st_uid), static_cast<unsigned>(info.st_mode)};
}

// Where a lookup of `name` in `directory` (a real directory) ends, and every directory it reads
// on the way, links followed as the kernel follows them (each hop's text looked up from the
// directory of that link): the directories whose writers decide which file the name opens.
// Those above `root` are the fake tree's surroundings in tests, "/" having none. nullopt when the
// name does not resolve (dangling, a loop).
std::optional<EntryInfo> follow(const fs::path& directory, const std::string& name, const fs::path& root) {
    EntryInfo result;
    std::deque<std::string> rest{name};
    fs::path current = directory;
    auto above_root = [&](const fs::path& path) {
        auto relative = root.lexically_relative(path);
        return path != root && !relative.empty() && *relative.begin() != "..";
    };
    for (int links = 0; !rest.empty();) {
        std::string component = rest.front();
        rest.pop_front();
        if (component.empty() || component == "." || component == "/") continue;
        if (component == "..") {  // `current` holds no link: its lexical parent is the real one
            current = current.parent_path();
            continue;
        }
        // `directory` itself is checked as hook.d's own.
        bool counted = current == directory || (!result.way.empty() && result.way.back().path == current.string());
        if (!counted && !above_root(current)) {
            auto entry = stat_entry(current);
            if (!entry) return std::nullopt;
            result.way.push_back(*entry);
        }
        fs::path next = current / component;
        struct stat info;
        if (::lstat(next.c_str(), &info) != 0) return std::nullopt;
        if (!result.way.empty() && result.way.back().path == current.string())
            result.way.back().looked_up_owners.push_back(static_cast<unsigned>(info.st_uid));
        if (!S_ISLNK(info.st_mode)) {
            current = next;
            continue;
        }
        if (++links > 40) return std::nullopt;  // the kernel's limit (ELOOP)
        std::error_code error;
        fs::path text = fs::read_symlink(next, error);
        if (error) return std::nullopt;
        if (text.is_absolute()) current = "/";
        std::vector<std::string> hop;
        for (const auto& part : text.relative_path()) hop.push_back(part.string());
        rest.insert(rest.begin(), hop.begin(), hop.end());
    }
    auto target = stat_entry(current);
    if (!target) return std::nullopt;
    result.uid = target->uid;
    result.mode = target->mode;
    return result;
}

std::vector<std::string> environment_for(const ScriptEvent& event) {
    std::vector<std::string> variables;
    bool has_path = false;
    for (char** variable = environ; variable && *variable; ++variable) {
        std::string_view text(*variable);
        if (text.starts_with("VFIO_HOOK_")) continue;
        has_path |= text.starts_with("PATH=");
        variables.emplace_back(text);
    }
    // libvirt passes PATH only if its daemon had one; scripts call systemctl, modprobe, ...
    if (!has_path) variables.emplace_back("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    std::string addresses;
    for (const auto& address : event.addresses) {
        if (!addresses.empty()) addresses += ' ';
        addresses += address.str();
    }
    variables.push_back("VFIO_HOOK_DOMAIN=" + event.domain_name);
    variables.push_back("VFIO_HOOK_DOMAIN_UUID=" + event.domain_uuid);
    variables.push_back("VFIO_HOOK_OPERATION=" + event.operation);
    variables.push_back("VFIO_HOOK_SUB_OPERATION=" + event.sub_operation);
    variables.push_back("VFIO_HOOK_PCI_ADDRESSES=" + addresses);
    return variables;
}

// The domain XML as a file the script reads at its own pace: a pipe we fill would need the
// script to read it all before we could read its output.
int xml_file(const std::string& xml) {
    int fd = ::memfd_create("vfio-hook-domain-xml", MFD_CLOEXEC);
    if (fd < 0) return ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    std::size_t written = 0;
    while (written < xml.size()) {
        ssize_t n = ::write(fd, xml.data() + written, xml.size() - written);
        if (n <= 0) break;
        written += static_cast<std::size_t>(n);
    }
    ::lseek(fd, 0, SEEK_SET);
    return fd;
}

// The longest line of a script's output that is logged (and quoted as the reason it failed):
// a line of megabytes would not fit a journald datagram, nor anyone's screen.
constexpr std::size_t max_line = 4096;

// One output stream of a script, cut into lines as it arrives. Each byte is looked at once and
// at most `max_line` bytes of a line are kept, so a script that writes 64 MiB without a newline
// costs what 64 MiB of lines cost, in bounded memory.
class OutputLines {
public:
    OutputLines(const std::string& script, bool is_stderr) : script_(script), is_stderr_(is_stderr) {}

    void feed(std::string_view bytes) {
        for (;;) {
            auto newline = bytes.find('\n');
            keep(bytes.substr(0, newline));
            if (newline == std::string_view::npos) return;
            end_line();
            bytes.remove_prefix(newline + 1);
        }
    }
    void finish() { end_line(); }  // what the script left without a newline at its end
    const std::string& last_line() const { return last_line_; }

private:
    void keep(std::string_view piece) {
        total_ += piece.size();
        if (full_) return;
        std::size_t room = max_line - line_.size();
        if (piece.size() <= room) {
            line_.append(piece);
            return;
        }
        line_.append(piece.substr(0, room));
        full_ = true;
        // The first byte left out continues a character: the kept part ends inside it. Cut
        // before that character: a MESSAGE that is not valid UTF-8 is "[blob data]" to
        // journalctl, and libvirt would show a broken character.
        if ((static_cast<unsigned char>(piece[room]) & 0xC0) == 0x80) drop_partial_character();
    }
    void drop_partial_character() {
        std::size_t end = line_.size();
        while (end > 0 && (static_cast<unsigned char>(line_[end - 1]) & 0xC0) == 0x80) --end;
        if (end > 0 && (static_cast<unsigned char>(line_[end - 1]) & 0xC0) == 0xC0) line_.resize(end - 1);
    }
    void end_line() {
        if (total_ == 0) return;
        // The note first: stderr, where there is no journal, keeps only PIPE_BUF bytes of a line.
        if (full_)
            line_.insert(0, "[line cut to " + std::to_string(line_.size()) + " of " + std::to_string(total_) +
                                " bytes] ");
        logger().info("{}: {}", script_, line_);
        if (is_stderr_) last_line_ = std::move(line_);
        line_.clear();
        total_ = 0;
        full_ = false;
    }

    const std::string& script_;
    bool is_stderr_;
    std::string line_;      // the line being read, its first max_line bytes
    std::size_t total_ = 0;  // bytes of it in all
    bool full_ = false;      // max_line bytes were reached: the rest is counted, not kept
    std::string last_line_;
};

struct Pipe {
    int read = -1, write = -1;
    Pipe() {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) == 0) read = fds[0], write = fds[1];
    }
    ~Pipe() {
        close_read();
        close_write();
    }
    Pipe(const Pipe&) = delete;
    Pipe& operator=(const Pipe&) = delete;
    void close_read() { ::close(std::exchange(read, -1)); }
    void close_write() { ::close(std::exchange(write, -1)); }
};

// An open descriptor, closed when it goes.
struct Fd {
    int fd = -1;
    explicit Fd(int value) : fd(value) {}
    ~Fd() {
        if (fd >= 0) ::close(fd);
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
};

// The script as one open file, checked after it was opened, so what runs is what was checked:
// the hook.d listing was checked seconds before (the scripts before this one ran since), and a
// path looked up again at exec could by then name another file.
Expected<int> open_checked(const std::string& script) {
    // O_NONBLOCK: a FIFO put in its place must not hold the hook in open(); fstat refuses it.
    int fd = ::open(script.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) return Error{script + ": cannot open it: " + std::strerror(errno)};
    struct stat info;
    if (::fstat(fd, &info) != 0) {
        int error = errno;
        ::close(fd);
        return Error{script + ": cannot run it: " + std::strerror(error)};
    }
    EntryInfo opened{script, static_cast<unsigned>(info.st_uid), static_cast<unsigned>(info.st_mode), {}};
    if (auto problem = opened_script_problem(opened, static_cast<unsigned>(::geteuid()))) {
        ::close(fd);
        return Error{"hook.d script not run: " + problem.message()};
    }
    return fd;
}

// "#!": the kernel hands such a file to its interpreter as /dev/fd/N, which the interpreter
// opens: N must stay open across the exec (execveat(2): with close-on-exec set, ENOENT).
bool has_interpreter(int fd) {
    char start[2];
    return ::pread(fd, start, sizeof start, 0) == 2 && start[0] == '#' && start[1] == '!';
}

struct Child {
    pid_t pid = -1;
    int out = -1, err = -1;  // read ends of its stdout and stderr
};

// Starts the open script `fd` in a process group of its own (the deadline kills the group),
// stdin the domain XML, SIGPIPE at its default (we ignore it; a script expects the default).
// Only what is async-signal-safe runs between fork and exec.
Expected<Child> spawn(const std::string& script, int fd, const ScriptEvent& event, const std::string& xml) {
    Pipe out, err, exec_error;
    if (out.read < 0 || err.read < 0 || exec_error.read < 0)
        return Error{script + ": cannot run it: " + std::strerror(errno)};
    Fd input(xml_file(xml));
    bool interpreted = has_interpreter(fd);
    std::vector<std::string> words{script, event.domain_name, event.operation, event.sub_operation, event.extra};
    std::vector<char*> argv;
    for (auto& word : words) argv.push_back(word.data());
    argv.push_back(nullptr);
    auto variables = environment_for(event);
    std::vector<char*> envp;
    for (auto& variable : variables) envp.push_back(variable.data());
    envp.push_back(nullptr);
    if (before_script_exec_for_tests) before_script_exec_for_tests(script);

    pid_t pid = ::fork();
    if (pid < 0) return Error{script + ": cannot run it: " + std::strerror(errno)};
    if (pid == 0) {
        struct sigaction default_action {};
        default_action.sa_handler = SIG_DFL;
        bool ready = ::setpgid(0, 0) == 0 && ::sigaction(SIGPIPE, &default_action, nullptr) == 0 &&
                     ::dup2(input.fd, 0) == 0 && ::dup2(out.write, 1) == 1 && ::dup2(err.write, 2) == 2 &&
                     (!interpreted || ::fcntl(fd, F_SETFD, 0) == 0);
        if (ready) ::execveat(fd, "", argv.data(), envp.data(), AT_EMPTY_PATH);
        int error = errno;
        ssize_t ignored = ::write(exec_error.write, &error, sizeof error);
        (void)ignored;
        ::_exit(127);
    }
    exec_error.close_write();
    int error = 0;
    ssize_t n;
    while ((n = ::read(exec_error.read, &error, sizeof error)) < 0 && errno == EINTR) {
    }
    if (n > 0) {  // EOF: the exec closed the pipe; a number: why it failed
        int status;
        ::waitpid(pid, &status, 0);
        return Error{script + ": cannot run it: " + std::strerror(error)};
    }
    Child child{pid, std::exchange(out.read, -1), std::exchange(err.read, -1)};
    return child;
}

// Logs the child's output, line by line, until it exits and its pipes are drained, or until
// `until`. Returns its wait status, or nullopt when it was still running at `until`.
std::optional<int> drain(const Child& child, Clock::time_point until, OutputLines (&lines)[2]) {
    int fds[2] = {child.out, child.err};
    int status = 0;
    bool exited = false;
    std::vector<char> buffer(65536);  // a pipe's whole default capacity in one read
    for (;;) {
        if (!exited && ::waitpid(child.pid, &status, WNOHANG) == child.pid) exited = true;
        auto left = std::chrono::ceil<std::chrono::milliseconds>(until - Clock::now()).count();
        if (!exited && left <= 0) break;
        pollfd polled[2] = {{fds[0], POLLIN, 0}, {fds[1], POLLIN, 0}};
        int ready = ::poll(polled, 2, exited ? 0 : static_cast<int>(std::min<long long>(left, 50)));
        if (ready < 0 && errno != EINTR) break;
        // Once it exited: what it wrote before is still in the pipes (its last stderr line is
        // the reason we give): read it all, but not what leftover children write later, nor
        // past the deadline when one of them never stops writing.
        if (exited && (ready == 0 || left <= 0)) break;
        for (int i = 0; i < 2; ++i) {
            if (polled[i].fd < 0 || !(polled[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            ssize_t n = ::read(polled[i].fd, buffer.data(), buffer.size());
            if (n > 0) lines[i].feed(std::string_view(buffer.data(), static_cast<std::size_t>(n)));
            if (n == 0) fds[i] = -1;
        }
    }
    for (auto& stream : lines) stream.finish();
    if (!exited) return std::nullopt;
    return status;
}

// Kills the group of a script past its deadline and says so.
Problem kill_late(const std::string& script, pid_t pid, std::chrono::milliseconds deadline) {
    ::kill(-pid, SIGKILL);
    // A script stuck in the kernel (an unbind waiting on a driver's remove, as NVRM does)
    // cannot die: a wait for it would hold libvirt forever. It holds none of libvirt's fds
    // (its output goes to our pipes), so after a bounded wait it is left behind.
    bool reaped = false;
    int status;
    for (int tries = 0; tries < 200 && !reaped; ++tries) {
        reaped = ::waitpid(pid, &status, WNOHANG) == pid;
        if (!reaped) ::usleep(10000);
    }
    return script + " did not finish within " + std::to_string(deadline.count()) +
           " ms (script-deadline-ms): killed with its process group" +
           (reaped ? "" : "; it is stuck in the kernel and could not die (see its state in ps)");
}

// Waits for the started script within the deadline, logging its output: none when it exited 0,
// else the line that says why not (its exit, with its last stderr line; or the kill).
Problem wait_for(const std::string& script, const Child& child, std::chrono::milliseconds deadline) {
    Fd out(child.out), err(child.err);
    OutputLines lines[2] = {{script, false}, {script, true}};
    auto status = drain(child, Clock::now() + deadline, lines);
    if (!status) return kill_late(script, child.pid, deadline);
    if (WIFEXITED(*status) && WEXITSTATUS(*status) == 0) return {};
    std::string how = WIFEXITED(*status) ? "exited " + std::to_string(WEXITSTATUS(*status))
                                         : "was killed by signal " + std::to_string(WTERMSIG(*status));
    const std::string& last = lines[1].last_line();
    return script + " " + how + (last.empty() ? std::string() : ": " + last);
}

// Runs one script: open and check it, start that very file, wait for it.
Problem run_one(const std::string& script, const ScriptEvent& event, const std::string& xml,
                std::chrono::milliseconds deadline) {
    auto opened = open_checked(script);
    if (!opened) return opened.error();
    Fd file(*opened);
    auto child = spawn(script, file.fd, event, xml);
    if (!child) return child.error();
    return wait_for(script, *child, deadline);
}

}  // namespace

std::function<void(const std::string& script)> before_script_exec_for_tests;

bool script_directory_exists(const HostPaths& paths, const std::string& domain_name,
                             const std::string& operation, const std::string& sub_operation,
                             bool with_qemu_d_layout) {
    struct stat info;
    for (const auto& directory : script_directories(domain_name, operation, sub_operation, with_qemu_d_layout)) {
        if (::stat((paths.root / directory).c_str(), &info) == 0 && S_ISDIR(info.st_mode)) return true;
    }
    return false;
}

ScriptPlan find_scripts(const HostPaths& paths, const std::string& domain_name, const std::string& operation,
                        const std::string& sub_operation, bool with_qemu_d_layout) {
    std::vector<ScriptDirectory> directories;
    std::error_code error;
    const fs::path root = fs::absolute(paths.root, error).lexically_normal();
    for (const auto& relative : script_directories(domain_name, operation, sub_operation, with_qemu_d_layout)) {
        fs::path directory = root / relative;
        // stat, as script_directory_exists does: a link to a directory is not skipped in
        // silence; its lstat() among the ancestors below refuses it by name.
        struct stat self;
        if (::stat(directory.c_str(), &self) != 0 || !S_ISDIR(self.st_mode)) continue;
        ScriptDirectory listing;
        // Every directory from the root down: whoever may write one of them may swap a script.
        fs::path prefix = root;
        if (auto top = stat_entry(prefix)) listing.ancestors.push_back(*top);
        for (const auto& component : fs::path(relative)) {
            prefix /= component;
            if (auto ancestor = stat_entry(prefix)) listing.ancestors.push_back(*ancestor);
        }
        std::unique_ptr<DIR, int (*)(DIR*)> entries(::opendir(directory.c_str()), &::closedir);
        while (dirent* entry = entries ? ::readdir(entries.get()) : nullptr) {
            std::string name = entry->d_name;
            if (name == "." || name == "..") continue;
            fs::path file = directory / name;
            auto info = stat_entry(file);
            if (!info) continue;
            // A symlink to a script is that script (its target's owner and mode), and the
            // directories on its way are as much a part of it as hook.d's own.
            if (S_ISLNK(info->mode)) info = follow(directory, name, root);
            if (!info) continue;
            info->path = file.string();
            listing.entries.push_back(std::move(*info));
        }
        directories.push_back(std::move(listing));
    }
    return plan_scripts(directories, static_cast<unsigned>(::geteuid()));
}

Problem run_scripts(const std::vector<std::string>& scripts, const ScriptEvent& event, const std::string& domain_xml,
                    std::chrono::milliseconds deadline, bool stop_at_first_failure) {
    Problem failures;
    for (const auto& script : scripts) {
        auto start = Clock::now();
        auto failure = run_one(script, event, domain_xml, deadline);
        auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
        if (!failure) {
            logger().info("{}: done in {} ms", script, took);
            continue;
        }
        logger().error("{}", failure.message());
        failures.merge(failure);
        if (stop_at_first_failure) break;
    }
    return failures;
}

}  // namespace vfio_hook

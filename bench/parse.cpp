// bench-parse: times the domain-XML parser the hook runs on every prepare and release, beside
// libxml2's own streaming reader walking the same bytes (the floor: what any libxml2-based
// reader of the document pays), and reports the process's peak RSS.
//
//   bench-parse MODE FILE ITERATIONS
//     MODE domain    parse_domain_xml (what prepare runs)
//          identity  parse_domain_identity (the first thing release runs)
//          reader    xmlTextReader over every node with the parser's options (the floor)
//
// The file is read the way the hook reads its stdin (64 KiB reads appended to a string), so the
// peak RSS includes the document itself, as it does in the hook. Output, tab-separated:
//   MODE bytes devices rss_input_kb rss_peak_kb sample_us,sample_us,...
// rss_input_kb is the peak after reading the file, before any parse; rss_peak_kb after all.

#include <fcntl.h>
#include <libxml/parser.h>
#include <libxml/xmlreader.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/domain_xml.hpp"

namespace {

long peak_rss_kb() {
    rusage usage{};
    ::getrusage(RUSAGE_SELF, &usage);
    return usage.ru_maxrss;
}

bool read_file(const char* path, std::string& text) {
    int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    char buffer[65536];
    ssize_t n;
    while ((n = ::read(fd, buffer, sizeof buffer)) > 0) text.append(buffer, static_cast<std::size_t>(n));
    ::close(fd);
    return n == 0;
}

// The floor: every node of the document through the same reader and options, nothing kept.
long reader_walk(const std::string& xml) {
    xmlTextReaderPtr reader = xmlReaderForMemory(xml.data(), static_cast<int>(xml.size()), nullptr, nullptr,
                                                 XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING |
                                                     XML_PARSE_NOCDATA);
    if (!reader) return -1;
    long elements = 0;
    int status;
    while ((status = xmlTextReaderRead(reader)) == 1) {
        if (xmlTextReaderNodeType(reader) == XML_READER_TYPE_ELEMENT) ++elements;
    }
    xmlFreeTextReader(reader);
    return status == 0 ? elements : -1;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 4) {
        std::fprintf(stderr, "usage: bench-parse domain|identity|reader FILE ITERATIONS\n");
        return 2;
    }
    std::string mode = argv[1];
    int iterations = std::atoi(argv[3]);
    if (mode != "domain" && mode != "identity" && mode != "reader") {
        std::fprintf(stderr, "bench-parse: unknown mode %s\n", argv[1]);
        return 2;
    }
    std::string xml;
    if (!read_file(argv[2], xml)) {
        std::fprintf(stderr, "bench-parse: cannot read %s\n", argv[2]);
        return 1;
    }
    long rss_input = peak_rss_kb();
    std::vector<double> samples;
    long devices = -1;
    for (int i = 0; i < iterations; ++i) {
        auto start = std::chrono::steady_clock::now();
        if (mode == "reader") {
            devices = reader_walk(xml) >= 0 ? 0 : -1;
        } else {
            auto domain = mode == "domain" ? vfio_hook::parse_domain_xml(xml) : vfio_hook::parse_domain_identity(xml);
            if (!domain) {
                std::fprintf(stderr, "bench-parse: %s\n", domain.error().c_str());
                return 1;
            }
            devices = static_cast<long>(domain->pci_devices.size());
        }
        samples.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count());
    }
    if (devices < 0) {
        std::fprintf(stderr, "bench-parse: the reader failed on %s\n", argv[2]);
        return 1;
    }
    std::printf("%s\t%zu\t%ld\t%ld\t%ld\t", mode.c_str(), xml.size(), devices, rss_input, peak_rss_kb());
    for (std::size_t i = 0; i < samples.size(); ++i) std::printf("%s%.1f", i ? "," : "", samples[i]);
    std::printf("\n");
    return 0;
}

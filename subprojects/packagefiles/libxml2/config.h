/* config.h for libxml2 as vfio-hook builds it (see meson.build beside this file), in place of the
 * one upstream's configure writes. The build hosts are Debian 12 and 13 with glibc, so the answers
 * are written down rather than probed: every header and function named here is in glibc.
 * Left undefined on purpose: networking (HTTP and FTP are off), dlopen (modules are off), zlib,
 * readline and history (xmllint only). */
#ifndef VFIO_HOOK_LIBXML2_CONFIG_H
#define VFIO_HOOK_LIBXML2_CONFIG_H

#define HAVE_CTYPE_H 1
#define HAVE_ERRNO_H 1
#define HAVE_FCNTL_H 1
#define HAVE_FLOAT_H 1
#define HAVE_INTTYPES_H 1
#define HAVE_LIMITS_H 1
#define HAVE_MALLOC_H 1
#define HAVE_MATH_H 1
#define HAVE_PTHREAD_H 1
#define HAVE_SIGNAL_H 1
#define HAVE_STDARG_H 1
#define HAVE_STDINT_H 1
#define HAVE_STDLIB_H 1
#define HAVE_STRINGS_H 1
#define HAVE_STRING_H 1
#define HAVE_SYS_MMAN_H 1
#define HAVE_SYS_STAT_H 1
#define HAVE_SYS_TIME_H 1
#define HAVE_SYS_TYPES_H 1
#define HAVE_TIME_H 1
#define HAVE_UNISTD_H 1

#define HAVE_FPRINTF 1
#define HAVE_GETTIMEOFDAY 1
#define HAVE_ISASCII 1
#define HAVE_LOCALTIME 1
#define HAVE_MMAP 1
#define HAVE_MUNMAP 1
#define HAVE_PRINTF 1
#define HAVE_PUTENV 1
#define HAVE_RAND 1
#define HAVE_RAND_R 1 /* dict.c seeds its hash with it */
#define HAVE_SNPRINTF 1
#define HAVE_SPRINTF 1
#define HAVE_SRAND 1
#define HAVE_SSCANF 1
#define HAVE_STAT 1
#define HAVE_STRFTIME 1
#define HAVE_TIME 1
#define HAVE_VA_COPY 1
#define HAVE_VFPRINTF 1
#define HAVE_VSNPRINTF 1
#define HAVE_VSPRINTF 1
#define HAVE___VA_COPY 1
#define STDC_HEADERS 1

#define PACKAGE "libxml2"
#define PACKAGE_NAME "libxml2"
#define PACKAGE_TARNAME "libxml2"
#define PACKAGE_VERSION "2.9.14"
#define PACKAGE_STRING "libxml2 2.9.14"
#define PACKAGE_BUGREPORT ""
#define PACKAGE_URL ""
#define VERSION "2.9.14"

#endif

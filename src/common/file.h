/* file.h: whole-file writes that are durable when they return: the small
 * state files beside the logs (recovery point, producer state, cleaner
 * offset, producer id block) and index files.  Leaf module apart from libc. */
#ifndef SHOPSTREAM_FILE_H
#define SHOPSTREAM_FILE_H

#include <stddef.h>

/* Writes n bytes to path (created or truncated) and fdatasyncs them.
 * Returns 0, or -1 with errno set. */
int file_write_synced(const char *path, const void *p, size_t n);

/* Replaces path atomically: writes <path>.tmp, syncs it, renames it over
 * path.  A crash leaves either the old or the new content.  Returns 0, or
 * -1 with errno set (path unchanged). */
int file_replace(const char *path, const void *p, size_t n);

/* Creates directory path and any missing parents (mode 0755), like
 * `mkdir -p`; an existing directory is fine.  Returns 0, or -1 with errno
 * set. */
int file_mkdirs(const char *path);

/* fsyncs a directory, so that creates, unlinks and renames in it are
 * durable.  Returns 0 or -1 (errno). */
int file_fsync_dir(const char *dir);
/* The same for the directory that holds path. */
int file_fsync_parent(const char *path);

#endif

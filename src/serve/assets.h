/* assets.h: the dashboard's files (src/serve/assets/), compiled into the
 * binary by tools/embed.c at build time, so serve needs no files and no
 * network at run time. */
#ifndef SHOPSTREAM_ASSETS_H
#define SHOPSTREAM_ASSETS_H

#include <stddef.h>

struct serve_asset {
    const char *path;          /* "/app.js"; "/" for index.html too */
    const char *content_type;
    const unsigned char *data;
    size_t len;
};

/* Ends with an entry whose path is NULL. */
extern const struct serve_asset serve_assets[];

#endif

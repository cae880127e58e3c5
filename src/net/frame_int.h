/* Internal to the net module: the frame encoder's second half, for the send path. */
#ifndef CFL_NET_FRAME_INT_H
#define CFL_NET_FRAME_INT_H

#include "cfl/frame.h"

/* Encodes `f` into dst[0..size), `size` being what cfl_frame_encoded_size() returned for this
 * very frame, unchanged since: the frame is not validated again (cfl_frame_encode() would
 * check every header a second time). Returns `size`, or CFL_ETOOBIG if it does not fit. */
int cfl__frame_encode_sized(uint8_t *dst, size_t size, const struct cfl_frame *f);

#endif

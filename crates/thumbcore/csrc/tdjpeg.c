/*
 * tdjpeg: the smallest C surface thumbcore needs from libjpeg(-turbo).
 *
 * libjpeg reports fatal errors by calling error_exit(), which must not return; the only
 * portable way out is longjmp. A longjmp across Rust frames is undefined behaviour, so every
 * libjpeg call happens here, inside a function that owns the setjmp, and Rust only ever sees
 * return codes. Nothing in this file allocates pixel memory: the caller passes the buffer.
 */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jpeglib.h>
#include <jerror.h>

#define TDJ_MSG_LEN 200

typedef struct tdj_info {
  unsigned int image_width;
  unsigned int image_height;
  unsigned int output_width;
  unsigned int output_height;
  int output_components;   /* 1 gray, 3 RGB, 4 CMYK */
  int jpeg_color_space;    /* J_COLOR_SPACE of the file */
  int saw_adobe_marker;
  int progressive;
  unsigned char *icc;      /* malloc'd by libjpeg; free with tdj_free_icc */
  unsigned int icc_len;
} tdj_info;

typedef struct tdj {
  struct jpeg_decompress_struct cinfo;
  struct jpeg_error_mgr jerr;
  struct jpeg_progress_mgr progress;
  jmp_buf jump;
  int active;              /* a header has been read and not yet finished or aborted */
  int premature_eof;       /* libjpeg hit the end of the data before the image ended */
  int max_scans;
  int timed_out;           /* the last decode ran past its deadline */
  int has_deadline;
  struct timespec deadline; /* CLOCK_MONOTONIC */
  char message[TDJ_MSG_LEN];
} tdj;

static void tdj_error_exit(j_common_ptr cinfo) {
  tdj *h = (tdj *)cinfo->client_data;
  char buf[JMSG_LENGTH_MAX];
  (*cinfo->err->format_message)(cinfo, buf);
  snprintf(h->message, TDJ_MSG_LEN, "%s", buf);
  longjmp(h->jump, 1);
}

static void tdj_emit_message(j_common_ptr cinfo, int level) {
  tdj *h = (tdj *)cinfo->client_data;
  if (level >= 0) return; /* trace messages */
  cinfo->err->num_warnings++;
  if (cinfo->err->msg_code == JWRN_JPEG_EOF) h->premature_eof = 1;
  if (h->message[0] == 0) {
    char buf[JMSG_LENGTH_MAX];
    (*cinfo->err->format_message)(cinfo, buf);
    snprintf(h->message, TDJ_MSG_LEN, "%s", buf);
  }
  /* A corrupt stream can produce a warning per MCU; past this many, give up early. */
  if (cinfo->err->num_warnings > 1000) {
    snprintf(h->message, TDJ_MSG_LEN, "too many corrupt-data warnings");
    longjmp(h->jump, 1);
  }
}

/* Progressive (and multi-scan) files may hold thousands of tiny scans, each costing a pass
 * over every coefficient block: a known decoder denial of service. Cap them (TurboJPEG's scan
 * limit), and stop at the deadline. Called from the progress monitor, which libjpeg calls
 * while it preloads a multi-scan file and for every output row, and from tdj_decode's own
 * loop, where libjpeg absorbs the scans of a progressive file without calling the monitor. */
static void tdj_check(tdj *h) {
  j_decompress_ptr d = &h->cinfo;
  if (d->input_scan_number > h->max_scans) {
    snprintf(h->message, TDJ_MSG_LEN, "more than %d scans", h->max_scans);
    longjmp(h->jump, 1);
  }
  if (h->has_deadline) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec > h->deadline.tv_sec ||
        (now.tv_sec == h->deadline.tv_sec && now.tv_nsec >= h->deadline.tv_nsec)) {
      h->timed_out = 1;
      snprintf(h->message, TDJ_MSG_LEN, "decoding ran past the time limit");
      longjmp(h->jump, 1);
    }
  }
}

static void tdj_progress(j_common_ptr cinfo) {
  if (cinfo->is_decompressor) tdj_check((tdj *)cinfo->client_data);
}

tdj *tdj_new(unsigned long max_memory, int max_scans) {
  tdj *volatile h = (tdj *)calloc(1, sizeof(tdj));
  if (!h) return NULL;
  h->cinfo.err = jpeg_std_error(&h->jerr);
  h->jerr.error_exit = tdj_error_exit;
  h->jerr.emit_message = tdj_emit_message;
  h->cinfo.client_data = h;
  h->max_scans = max_scans;
  if (setjmp(h->jump)) {
    free(h);
    return NULL;
  }
  jpeg_create_decompress(&h->cinfo);
  h->cinfo.mem->max_memory_to_use = (long)max_memory;
  h->progress.progress_monitor = tdj_progress;
  h->cinfo.progress = &h->progress;
  return h;
}

void tdj_free(tdj *h) {
  if (!h) return;
  jpeg_destroy_decompress(&h->cinfo);
  free(h);
}

void tdj_free_icc(unsigned char *icc) { free(icc); }

const char *tdj_message(const tdj *h) { return h->message; }

int tdj_premature_eof(const tdj *h) { return h->premature_eof; }

int tdj_timed_out(const tdj *h) { return h->timed_out; }

void tdj_abort(tdj *h) {
  if (h->active) {
    jpeg_abort_decompress(&h->cinfo);
    h->active = 0;
  }
}

/*
 * Reads the header, chooses the output colour space and the DCT scale 1/scale_denom
 * (1, 2, 4 or 8), and reports the output size. Returns 0 on success, -1 on error
 * (tdj_message tells why); the decoder is then reset and ready for the next image.
 */
int tdj_read_header(tdj *h, const unsigned char *data, unsigned long len, int scale_denom,
                    int want_icc, tdj_info *info) {
  j_decompress_ptr cinfo = &h->cinfo;
  tdj_abort(h);
  memset(info, 0, sizeof(*info));
  h->message[0] = 0;
  h->premature_eof = 0;
  h->timed_out = 0;
  h->has_deadline = 0;
  h->jerr.num_warnings = 0;
  if (setjmp(h->jump)) {
    if (info->icc) {
      free(info->icc);
      info->icc = NULL;
      info->icc_len = 0;
    }
    jpeg_abort_decompress(cinfo);
    h->active = 0;
    return -1;
  }
  jpeg_mem_src(cinfo, data, len);
  h->active = 1;
  if (want_icc) jpeg_save_markers(cinfo, JPEG_APP0 + 2, 0xFFFF);
  else jpeg_save_markers(cinfo, JPEG_APP0 + 2, 0);
  jpeg_read_header(cinfo, TRUE);

  switch (cinfo->jpeg_color_space) {
  case JCS_GRAYSCALE:
    cinfo->out_color_space = JCS_GRAYSCALE;
    break;
  case JCS_CMYK:
  case JCS_YCCK:
    cinfo->out_color_space = JCS_CMYK;
    break;
  default:
    cinfo->out_color_space = JCS_RGB;
    break;
  }
  cinfo->scale_num = 1;
  cinfo->scale_denom = (unsigned int)scale_denom;
  cinfo->dct_method = JDCT_ISLOW;
  jpeg_calc_output_dimensions(cinfo);

  info->image_width = cinfo->image_width;
  info->image_height = cinfo->image_height;
  info->output_width = cinfo->output_width;
  info->output_height = cinfo->output_height;
  info->output_components = cinfo->out_color_components;
  info->jpeg_color_space = (int)cinfo->jpeg_color_space;
  info->saw_adobe_marker = cinfo->saw_Adobe_marker;
  info->progressive = cinfo->progressive_mode;
  if (want_icc) {
    JOCTET *icc = NULL;
    unsigned int icc_len = 0;
    if (jpeg_read_icc_profile(cinfo, &icc, &icc_len)) {
      info->icc = icc;
      info->icc_len = icc_len;
    }
  }
  return 0;
}

/*
 * True when every coefficient that the (scaled) inverse DCT of every component reads has been
 * fully refined. A component decoded at 1/8 (a 1x1 IDCT) reads only its DC coefficient; any
 * other size is taken to read all 64.
 */
static int tdj_enough_coefficients(j_decompress_ptr cinfo) {
  int ci, k;
  if (cinfo->coef_bits == NULL) return 0;
  for (ci = 0; ci < cinfo->num_components; ci++) {
    int needed = cinfo->comp_info[ci].DCT_scaled_size == 1 ? 1 : DCTSIZE2;
    for (k = 0; k < needed; k++)
      if (cinfo->coef_bits[ci][k] != 0) return 0;
  }
  return 1;
}

/*
 * Decodes the image whose header tdj_read_header just read into `out`, rows `stride` bytes
 * apart (at least output_width * output_components). Returns 0 on success, -1 on error
 * (tdj_timed_out tells whether it was the deadline).
 *
 * `max_memory` bounds libjpeg's full-image coefficient buffers (progressive and multi-scan
 * files): past it libjpeg would need a backing store, which this build does not have, so it
 * fails instead of allocating. `budget_ms` is the time the decode may take (< 0: no limit);
 * the deadline is checked at least once per iMCU row of input and per output row.
 *
 * Progressive files are read in buffered-image mode and output as soon as the coefficients
 * the scaled IDCT needs are complete: at 1/8 scale that is usually after the DC and chroma
 * scans, so the large luma AC scans are never entropy-decoded. The pixels are the same as
 * after a full decode, because the scaled IDCT never reads the skipped coefficients.
 */
int tdj_decode(tdj *h, unsigned char *out, unsigned long stride, unsigned long out_len,
               unsigned long max_memory, long budget_ms) {
  j_decompress_ptr cinfo = &h->cinfo;
  h->timed_out = 0;
  h->has_deadline = budget_ms >= 0;
  if (h->has_deadline) {
    clock_gettime(CLOCK_MONOTONIC, &h->deadline);
    h->deadline.tv_sec += budget_ms / 1000;
    h->deadline.tv_nsec += (budget_ms % 1000) * 1000000L;
    if (h->deadline.tv_nsec >= 1000000000L) {
      h->deadline.tv_sec += 1;
      h->deadline.tv_nsec -= 1000000000L;
    }
  }
  if (!h->active) {
    snprintf(h->message, TDJ_MSG_LEN, "no header read");
    return -1;
  }
  if (setjmp(h->jump)) {
    jpeg_abort_decompress(cinfo);
    h->active = 0;
    return -1;
  }
  cinfo->mem->max_memory_to_use = (long)max_memory;
  tdj_check(h);
  if (cinfo->progressive_mode) {
    cinfo->buffered_image = TRUE;
    cinfo->do_block_smoothing = FALSE;
  }
  jpeg_start_decompress(cinfo);
  if ((unsigned long)cinfo->output_width * (unsigned long)cinfo->output_components > stride ||
      stride * (unsigned long)cinfo->output_height > out_len) {
    snprintf(h->message, TDJ_MSG_LEN, "output buffer too small");
    jpeg_abort_decompress(cinfo);
    h->active = 0;
    return -1;
  }
  int stopped_early = 0;
  if (cinfo->buffered_image) {
    for (;;) {
      /* One call absorbs at most one iMCU row or one marker segment; libjpeg does not call
       * the progress monitor here, so the scan cap and the deadline are checked by hand. */
      int rc = jpeg_consume_input(cinfo);
      tdj_check(h);
      if (rc == JPEG_REACHED_EOI || rc == JPEG_SUSPENDED) break;
      if (rc == JPEG_SCAN_COMPLETED && tdj_enough_coefficients(cinfo)) {
        stopped_early = 1;
        break;
      }
    }
    jpeg_start_output(cinfo, cinfo->input_scan_number);
  }
  while (cinfo->output_scanline < cinfo->output_height) {
    JSAMPROW row = out + (unsigned long)cinfo->output_scanline * stride;
    jpeg_read_scanlines(cinfo, &row, 1);
  }
  if (stopped_early) {
    jpeg_abort_decompress(cinfo);
  } else {
    if (cinfo->buffered_image) jpeg_finish_output(cinfo);
    jpeg_finish_decompress(cinfo);
  }
  h->active = 0;
  return 0;
}

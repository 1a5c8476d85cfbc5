/*
 * utf8.h - UTF-8 checks for text that comes from a request and text that goes
 * into a JSON reply (jansson refuses invalid UTF-8: a message holding a byte
 * of the client's would make the reply itself fail). Pure and thread-safe;
 * every function accepts arbitrary bytes.
 */
#ifndef CFA_API_UTF8_H
#define CFA_API_UTF8_H

#include <stddef.h>

/* Length of the longest prefix of s[0..n) made of whole, valid UTF-8
 * characters (RFC 3629: no overlong forms, no surrogates, at most U+10FFFF).
 * The text is valid when the result is n. NUL counts as a character. */
size_t utf8_valid_prefix(const char *s, size_t n);

/* Copies s[0..n) into dst (cap > 0), NUL-terminated, with every byte that
 * does not start a valid character replaced by U+FFFD, and never cuts inside
 * a character when dst is too small. Returns the bytes written (without the
 * terminator). */
size_t utf8_clean(char *dst, size_t cap, const char *s, size_t n);

#endif

// A raw e-mail message (RFC 822 headers, MIME body) reduced to the text a classifier reads:
// the Subject and the body's text, headers dropped, MIME parts decoded, HTML turned into text
// crudely. Written for the SpamAssassin corpus (mail from 2002-2003); torch-free.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace mcd::data::demo {

struct EmailText {
  std::string subject;  // decoded (RFC 2047), whitespace collapsed; "" when absent
  std::string body;     // normalised text (normalize_whitespace); "" when nothing readable
};

// Headers: the block up to the first blank line (an mbox "From " line first is skipped; folded
// lines are joined); a body with no header block is all body. Body: for multipart/* the text
// parts, recursively (message/rfc822 too); text/plain parts are preferred, text/html parts are
// used when there is no plain one (e.g. multipart/alternative keeps its plain version);
// attachments and non-text parts are dropped. Each part is decoded (quoted-printable, base64)
// and converted to UTF-8 from its charset; a text/plain part that looks like HTML is treated as
// HTML. The result is always valid UTF-8.
EmailText email_to_text(std::string_view message);

// Tags dropped (block-level ones become line breaks), <script>/<style> contents and comments
// removed, common entities and numeric references decoded.
std::string html_to_text(std::string_view html);

std::string decode_quoted_printable(std::string_view s);
std::string decode_base64(std::string_view s);  // ignores characters outside the alphabet
// Encoded words (=?charset?Q?...?= and =?charset?B?...?=) decoded, the rest kept.
std::string decode_header_words(std::string_view value);

// `bytes` as UTF-8: kept when already valid; otherwise ISO-8859-1 / Windows-1252 bytes are
// converted (those charsets, us-ascii, or none declared), and for any other charset each run of
// invalid bytes becomes U+FFFD. Control characters other than tab and newline become spaces.
std::string to_utf8(std::string_view bytes, std::string_view charset);
bool is_valid_utf8(std::string_view s);

// Each line's runs of spaces and tabs become one space and lines are trimmed; leading and
// trailing blank lines go and runs of blank lines become one. Non-breaking spaces count as spaces.
std::string normalize_whitespace(std::string_view s);

// At most `max_bytes` bytes, cut at a UTF-8 character boundary.
std::string truncate_utf8(std::string_view s, size_t max_bytes);

}  // namespace mcd::data::demo

// GPT-2's byte-to-unicode alphabet: every byte gets a printable code point so vocabulary files
// can store byte strings as text. The loaders in bpe_tokenizer.cpp decode vocab entries with it.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace mcd::data {

// Code point standing for each byte: printable Latin-1 bytes (! .. ~, ¡ .. ¬, ® .. ÿ) stand for
// themselves, the other 68 bytes take U+0100, U+0101, ... in byte order.
const std::array<uint32_t, 256>& byte_to_unicode();

// Bytes -> the UTF-8 text of their byte-level symbols (e.g. " the" -> "Ġthe").
std::string byte_level_encode(std::string_view bytes);

// Inverse of byte_level_encode. Returns false (leaving `bytes` unspecified) when `text` is not
// valid UTF-8 or holds a character outside the 256-symbol alphabet.
bool byte_level_decode(std::string_view text, std::string& bytes);

}  // namespace mcd::data

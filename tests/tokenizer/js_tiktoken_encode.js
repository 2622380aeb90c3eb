#!/usr/bin/env node
// Reference encoder for the parity tests in tokenizer_parity_test.cpp: js-tiktoken's gpt2
// encoding, loaded from the node_modules that scripts/fetch_assets.sh unpacks. Modes:
//   node js_tiktoken_encode.js ASSETS --file PATH       ids of the file's text, as JSON
//   node js_tiktoken_encode.js ASSETS --cases JSON      [[ids], ...] for {"cases":[{text,allow_special}]}
//   node js_tiktoken_encode.js ASSETS --fill JSON       writes those ids into the file's "ids" fields
// "<|endoftext|>" is plain text unless a case sets allow_special (then it is the special token).
'use strict';
const fs = require('fs');
const path = require('path');

const [assets, mode, target] = process.argv.slice(2);
if (!assets || !mode || !target) {
  console.error('usage: js_tiktoken_encode.js ASSETS_DIR --file PATH | --cases JSON | --fill JSON');
  process.exit(2);
}
const pkg = path.resolve(assets, 'node_modules', 'js-tiktoken');
const {Tiktoken} = require(path.join(pkg, 'dist', 'lite.cjs'));
const ranks = require(path.join(pkg, 'dist', 'ranks', 'gpt2.cjs'));
const enc = new Tiktoken(ranks.default || ranks);

function encode(text, allowSpecial) {
  return allowSpecial ? enc.encode(text, 'all', []) : enc.encode(text, [], []);
}

if (mode === '--file') {
  const text = fs.readFileSync(target, 'utf8');
  process.stdout.write(JSON.stringify(encode(text, false)) + '\n');
} else if (mode === '--cases' || mode === '--fill') {
  const doc = JSON.parse(fs.readFileSync(target, 'utf8'));
  const ids = doc.cases.map((c) => encode(c.text, !!c.allow_special));
  if (mode === '--cases') {
    process.stdout.write(JSON.stringify(ids) + '\n');
  } else {
    doc.generator = 'js-tiktoken@' + require(path.join(pkg, 'package.json')).version + ' gpt2';
    doc.cases.forEach((c, i) => { c.ids = ids[i]; });
    const lines = ['{', '  "generator": ' + JSON.stringify(doc.generator) + ',', '  "cases": ['];
    doc.cases.forEach((c, i) => {
      lines.push('    ' + JSON.stringify(c) + (i + 1 < doc.cases.length ? ',' : ''));
    });
    lines.push('  ]', '}', '');
    fs.writeFileSync(target, lines.join('\n'));
  }
} else {
  console.error('unknown mode ' + mode);
  process.exit(2);
}

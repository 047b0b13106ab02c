// Renders badges with badge-maker, the reference tests/badge_maker.rs holds the
// node's SVG to.
//
// Usage: node render.mjs <badge-maker package folder> < cases.json
// Reads a JSON array of makeBadge() arguments; writes one JSON object:
// { "version": "<badge-maker version>", "svgs": [<SVG, or { "error": "..." }>, ...] }
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { pathToFileURL } from 'node:url'

const dir = process.argv[2]
if (!dir) {
  console.error('usage: node render.mjs <badge-maker package folder> < cases.json')
  process.exit(2)
}
const { version } = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8'))
const { makeBadge } = await import(pathToFileURL(path.join(dir, 'lib', 'index.js')).href)

const cases = JSON.parse(readFileSync(0, 'utf8'))
const svgs = cases.map(format => {
  try {
    return makeBadge(format)
  } catch (err) {
    return { error: String(err) }
  }
})
process.stdout.write(JSON.stringify({ version, svgs }))

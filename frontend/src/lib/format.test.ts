import { describe, expect, it } from 'vitest'
import { characters, prettyArguments, sizeOf } from './format'

describe('format', () => {
  it('pretty-prints complete JSON arguments and keeps a partial prefix as it is', () => {
    expect(prettyArguments('{"city":"Paris","n":[1,2]}')).toEqual({
      text: '{\n  "city": "Paris",\n  "n": [\n    1,\n    2\n  ]\n}',
      json: true,
    })
    expect(prettyArguments('{"city":"Par')).toEqual({ text: '{"city":"Par', json: false })
    expect(prettyArguments('')).toEqual({ text: '', json: false })
  })

  it('counts characters in code points', () => {
    expect(characters('a🙂')).toBe('2 characters')
    expect(characters('x')).toBe('1 character')
    expect(characters('y'.repeat(1234))).toBe('1,234 characters')
  })

  it('gives sizes in B, kB and MB', () => {
    expect(sizeOf(999)).toBe('999 B')
    expect(sizeOf(48_200)).toBe('48 kB')
    expect(sizeOf(12_345_678)).toBe('12.3 MB')
  })
})

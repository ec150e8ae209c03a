import { fireEvent, render, screen } from '@testing-library/svelte'
import { describe, expect, it, vi } from 'vitest'
import Composer from './Composer.svelte'

function setup(busy = false) {
  const onsend = vi.fn(() => true)
  const onstop = vi.fn()
  render(Composer, { props: { busy, stopping: false, onsend, onstop } })
  const composer = screen.getByTestId('composer') as HTMLTextAreaElement
  return { onsend, onstop, composer }
}

describe('Composer', () => {
  it('has a label and sends on Enter, then clears', async () => {
    const { onsend, composer } = setup()
    expect(screen.getByLabelText('Message')).toBe(composer)
    await fireEvent.input(composer, { target: { value: 'hello\nworld' } })
    await fireEvent.keyDown(composer, { key: 'Enter' })
    expect(onsend).toHaveBeenCalledWith('hello\nworld')
    expect(composer.value).toBe('')
  })

  it('does not send on Shift+Enter, during IME composition, or when empty', async () => {
    const { onsend, composer } = setup()
    await fireEvent.keyDown(composer, { key: 'Enter' })
    await fireEvent.input(composer, { target: { value: 'line' } })
    await fireEvent.keyDown(composer, { key: 'Enter', shiftKey: true })
    await fireEvent.keyDown(composer, { key: 'Enter', isComposing: true })
    expect(onsend).not.toHaveBeenCalled()
    expect(screen.getByTestId('send')).toBeEnabled()
  })

  it('shows Stop instead of Send while an answer is written', async () => {
    const { onstop, onsend, composer } = setup(true)
    expect(screen.queryByTestId('send')).toBeNull()
    await fireEvent.click(screen.getByTestId('stop'))
    expect(onstop).toHaveBeenCalledOnce()
    await fireEvent.input(composer, { target: { value: 'next' } })
    await fireEvent.keyDown(composer, { key: 'Enter' })
    expect(onsend).not.toHaveBeenCalled()
  })

  it('hands over picked and pasted images, shows the attached ones and sends them without text', async () => {
    const onattach = vi.fn()
    const ondetach = vi.fn()
    const onsend = vi.fn(() => true)
    const attachments = [
      {
        ref: { id: 'i1', type: 'image/png', name: 'cat.png', bytes: 2048 },
        url: 'data:image/png;base64,AAAA',
      },
    ]
    render(Composer, {
      props: {
        busy: false,
        stopping: false,
        attachments,
        onsend,
        onstop: vi.fn(),
        onattach,
        ondetach,
      },
    })
    const file = new File(['x'], 'dog.png', { type: 'image/png' })
    const input = screen.getByTestId('attach') as HTMLInputElement
    Object.defineProperty(input, 'files', { value: [file], configurable: true })
    await fireEvent.change(input)
    expect(onattach).toHaveBeenLastCalledWith([file])

    const composer = screen.getByTestId('composer')
    const text = new File(['x'], 'notes.txt', { type: 'text/plain' })
    await fireEvent.paste(composer, { clipboardData: { files: [text, file] } })
    expect(onattach).toHaveBeenLastCalledWith([file])

    expect(screen.getByRole('img', { name: 'cat.png' })).toHaveAttribute('src', attachments[0]?.url)
    await fireEvent.click(screen.getByRole('button', { name: 'Remove cat.png' }))
    expect(ondetach).toHaveBeenCalledWith('i1')
    expect(screen.getByTestId('send')).toBeEnabled()
    await fireEvent.click(screen.getByTestId('send'))
    expect(onsend).toHaveBeenCalledWith('')
  })
})

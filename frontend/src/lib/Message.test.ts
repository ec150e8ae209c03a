import { fireEvent, render, screen, within } from '@testing-library/svelte'
import { describe, expect, it, vi } from 'vitest'
import Message from './Message.svelte'
import type { ChatMessage } from './types'

function answer(extra: Partial<ChatMessage>): ChatMessage {
  return { id: 'a1', role: 'assistant', content: '', status: 'streaming', createdAt: 0, ...extra }
}

describe('Message', () => {
  it('renders an answer as sanitized Markdown with test hooks and aria-live', () => {
    render(Message, {
      props: {
        message: answer({
          content: '**bold** <img src=x onerror="alert(1)">',
          status: 'streaming',
        }),
        onretry: vi.fn(),
      },
    })
    const element = screen.getByTestId('message')
    expect(element.dataset.role).toBe('assistant')
    expect(element.dataset.status).toBe('streaming')
    expect(element).toHaveAttribute('aria-live', 'polite')
    expect(element).toHaveAttribute('aria-busy', 'true')
    expect(element.querySelector('strong')?.textContent).toBe('bold')
    expect(element.querySelector('img')).toBeNull()
    expect(element.textContent?.trim()).toBe('bold')
  })

  it('shows a user message as plain text, exactly', () => {
    const content = '<b>not bold</b>\n  indented'
    render(Message, {
      props: {
        message: { id: 'u', role: 'user', content, status: 'done', createdAt: 0 },
        onretry: vi.fn(),
      },
    })
    const element = screen.getByTestId('message')
    expect(element.dataset.role).toBe('user')
    expect(element.textContent).toBe(content)
  })

  it('shows a failure with its message and a retry action', async () => {
    const onretry = vi.fn()
    render(Message, {
      props: {
        message: answer({ status: 'error', error: { code: 'upstream', message: 'Model down' } }),
        onretry,
      },
    })
    expect(screen.getByRole('alert')).toHaveTextContent('Model down')
    await fireEvent.click(screen.getByRole('button', { name: 'Retry' }))
    expect(onretry).toHaveBeenCalledWith('a1')
  })

  it('shows reasoning open while the model thinks and collapsed, with its length, once it answers', async () => {
    const thinking = answer({ reasoning: 'Let me think\nabout it' })
    const { rerender } = render(Message, { props: { message: thinking, onretry: vi.fn() } })
    const toggle = screen.getByTestId('reasoning-toggle')
    const text = screen.getByTestId('reasoning-text')
    expect(toggle).toHaveAttribute('aria-expanded', 'true')
    expect(toggle).toHaveTextContent('Thinking… 21 characters')
    expect(text.textContent).toBe('Let me think\nabout it')
    expect(text).toBeVisible()

    await rerender({ message: { ...thinking, content: 'The answer' } })
    expect(toggle).toHaveAttribute('aria-expanded', 'false')
    expect(toggle).toHaveTextContent('Thought 21 characters')
    expect(text).not.toBeVisible()
    await fireEvent.click(toggle)
    expect(toggle).toHaveAttribute('aria-expanded', 'true')
    // The message element itself holds the answer text only.
    expect(screen.getByTestId('message').textContent?.trim()).toBe('The answer')
  })

  it('shows tool calls as cards with pretty-printed arguments, raw while they are not JSON yet', () => {
    render(Message, {
      props: {
        message: answer({
          toolCalls: [
            { id: 'call_1', name: 'get_weather', arguments: '{"city":"Paris"}' },
            { id: 'call_2', name: 'get_time', arguments: '{"tz":"Asi' },
          ],
        }),
        onretry: vi.fn(),
      },
    })
    const [first, second] = screen.getAllByTestId('tool-call')
    expect(within(first as HTMLElement).getByTestId('tool-name')).toHaveTextContent('get_weather')
    expect(within(first as HTMLElement).getByTestId('tool-arguments').textContent).toBe(
      '{\n  "city": "Paris"\n}',
    )
    expect(within(second as HTMLElement).getByTestId('tool-arguments').textContent).toBe(
      '{"tz":"Asi',
    )
  })

  it('sets a refusal apart from the answer text', () => {
    render(Message, {
      props: {
        message: answer({ status: 'done', refusal: 'I can’t help with that.' }),
        onretry: vi.fn(),
      },
    })
    expect(screen.getByTestId('refusal')).toHaveTextContent('Declined I can’t help with that.')
    expect(screen.getByTestId('message').textContent?.trim()).toBe('')
  })

  it('offers copy beside a finished answer, and regenerate beside the last one', async () => {
    const oncopy = vi.fn(async () => true)
    const onregenerate = vi.fn()
    const done = answer({ status: 'done', content: '**hi**' })
    const { rerender } = render(Message, {
      props: { message: done, canRegenerate: true, onretry: vi.fn(), oncopy, onregenerate },
    })
    await fireEvent.click(screen.getByTestId('copy'))
    expect(oncopy).toHaveBeenCalledWith('a1')
    expect(await screen.findByText('Copied')).toBeInTheDocument()
    await fireEvent.click(screen.getByTestId('regenerate'))
    expect(onregenerate).toHaveBeenCalledWith('a1')

    await rerender({ message: done, canRegenerate: false })
    expect(screen.queryByTestId('regenerate')).toBeNull()
    await rerender({ message: { ...done, status: 'streaming' } })
    expect(screen.queryByTestId('copy')).toBeNull()
  })

  it('shows the images of a question, and says so when this browser does not have one', () => {
    render(Message, {
      props: {
        message: {
          id: 'u',
          role: 'user',
          content: 'What is this?',
          status: 'done',
          createdAt: 0,
          images: [
            { id: 'i1', type: 'image/png', name: 'here.png', bytes: 10 },
            { id: 'i2', type: 'image/jpeg', name: 'gone.jpg', bytes: 10 },
          ],
        },
        imageUrls: { i1: 'data:image/png;base64,AAAA', i2: null },
        onretry: vi.fn(),
      },
    })
    expect(screen.getByRole('img', { name: 'here.png' })).toHaveAttribute(
      'src',
      'data:image/png;base64,AAAA',
    )
    expect(screen.getByTestId('thumbnail-missing')).toHaveTextContent('Image not in this browser')
    expect(screen.getByTestId('message').textContent).toBe('What is this?')
  })
})

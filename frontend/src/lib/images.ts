/**
 * The images the user attaches: checked, read as `data:` URLs (the form the server sends upstream), and kept
 * in IndexedDB by id. A conversation in localStorage holds only an `ImageRef`: localStorage has a few
 * megabytes per origin, less than one photo, while IndexedDB holds hundreds. Every tab of the origin sees
 * the same database, so a second tab shows (and a regenerated answer sends) the images the first one stored.
 *
 * The limits are the server's defaults (`CHATRELAY_MAX_IMAGE_BYTES`, `CHATRELAY_MAX_BODY_BYTES`), checked
 * here to tell the user at once; a server configured lower still answers 413/422 with its own message.
 */
import { sizeOf } from './format'
import type { ImageRef } from './types'

export const MAX_IMAGE_BYTES = 10_000_000
/** The media types the OpenAI chat models read (and most other vision models). */
export const IMAGE_TYPES: readonly string[] = ['image/png', 'image/jpeg', 'image/webp', 'image/gif']

export interface StoredImage {
  id: string
  /** The image as a `data:` URL. */
  url: string
  /** Milliseconds since the epoch: unsent drafts are swept once old (`sweep`). */
  createdAt: number
}

/** Where images live; IndexedDB in the browser, a Map in tests. */
export interface ImageStore {
  put(image: StoredImage): Promise<void>
  /** The URLs of those of `ids` that are stored. */
  get(ids: readonly string[]): Promise<Map<string, string>>
  remove(ids: readonly string[]): Promise<void>
  /** Removes the images created before `before` whose id `keep` does not hold. */
  sweep(before: number, keep: ReadonlySet<string>): Promise<void>
}

export class ImageError extends Error {
  override name = 'ImageError'
}

/** Why `file` cannot be sent, or null when it can. */
export function imageProblem(file: Pick<File, 'name' | 'type' | 'size'>): string | null {
  if (!IMAGE_TYPES.includes(file.type)) {
    return `“${file.name}” is not an image the model can read (PNG, JPEG, WebP or GIF).`
  }
  if (file.size > MAX_IMAGE_BYTES) {
    return `“${file.name}” is ${sizeOf(file.size)}: an image can be at most ${sizeOf(MAX_IMAGE_BYTES)}.`
  }
  return null
}

export function readDataUrl(file: Blob): Promise<string> {
  return new Promise((ok, fail) => {
    const reader = new FileReader()
    reader.onload = () => ok(String(reader.result))
    reader.onerror = () => fail(reader.error ?? new ImageError('The file could not be read.'))
    reader.readAsDataURL(file)
  })
}

/** Checks, reads and stores one file; throws `ImageError` with a sentence for the user. */
export async function storeImage(
  store: ImageStore,
  file: File,
  id: string,
  now: number,
): Promise<{ ref: ImageRef; url: string }> {
  const problem = imageProblem(file)
  if (problem) throw new ImageError(problem)
  let url: string
  try {
    url = await readDataUrl(file)
  } catch {
    throw new ImageError(`“${file.name}” could not be read.`)
  }
  try {
    await store.put({ id, url, createdAt: now })
  } catch {
    throw new ImageError(
      `“${file.name}” could not be kept in this browser (its storage may be full).`,
    )
  }
  return { ref: { id, type: file.type, name: file.name || 'image', bytes: file.size }, url }
}

export function memoryImages(): ImageStore {
  const images = new Map<string, StoredImage>()
  return {
    put: async (image) => void images.set(image.id, image),
    get: async (ids) => {
      const found = new Map<string, string>()
      for (const id of ids) {
        const image = images.get(id)
        if (image) found.set(id, image.url)
      }
      return found
    },
    remove: async (ids) => ids.forEach((id) => images.delete(id)),
    sweep: async (before, keep) => {
      for (const [id, image] of images) {
        if (image.createdAt < before && !keep.has(id)) images.delete(id)
      }
    },
  }
}

const DB_NAME = 'chatrelay'
const STORE = 'images'

function committed(tx: IDBTransaction): Promise<void> {
  return new Promise((ok, fail) => {
    tx.oncomplete = () => ok()
    tx.onerror = tx.onabort = () => fail(tx.error)
  })
}

function result<T>(request: IDBRequest<T>): Promise<T> {
  return new Promise((ok, fail) => {
    request.onsuccess = () => ok(request.result)
    request.onerror = () => fail(request.error)
  })
}

/** Images in the origin's IndexedDB (`chatrelay` / `images`, keyed by id, indexed by `createdAt`). */
export function indexedDbImages(factory: IDBFactory = indexedDB): ImageStore {
  let opened: Promise<IDBDatabase> | undefined
  const db = () =>
    (opened ??= new Promise((ok, fail) => {
      const request = factory.open(DB_NAME, 1)
      request.onupgradeneeded = () => {
        request.result
          .createObjectStore(STORE, { keyPath: 'id' })
          .createIndex('createdAt', 'createdAt')
      }
      request.onsuccess = () => ok(request.result)
      request.onerror = () => {
        opened = undefined
        fail(request.error)
      }
    }))
  const transaction = async (mode: IDBTransactionMode) => (await db()).transaction(STORE, mode)

  return {
    async put(image) {
      const tx = await transaction('readwrite')
      tx.objectStore(STORE).put(image)
      await committed(tx) // another tab that reads the conversation next finds the image
    },
    async get(ids) {
      const store = (await transaction('readonly')).objectStore(STORE)
      const images = await Promise.all(
        ids.map((id) => result(store.get(id) as IDBRequest<StoredImage | undefined>)),
      )
      return new Map(images.flatMap((image) => (image ? [[image.id, image.url]] : [])))
    },
    async remove(ids) {
      const tx = await transaction('readwrite')
      const store = tx.objectStore(STORE)
      for (const id of ids) store.delete(id)
      await committed(tx)
    },
    async sweep(before, keep) {
      const tx = await transaction('readwrite')
      const store = tx.objectStore(STORE)
      // Keys only: the images themselves are not read.
      const cursor = store.index('createdAt').openKeyCursor(IDBKeyRange.upperBound(before, true))
      cursor.onsuccess = () => {
        const at = cursor.result
        if (!at) return
        if (!keep.has(String(at.primaryKey))) store.delete(at.primaryKey)
        at.continue()
      }
      await committed(tx)
    },
  }
}

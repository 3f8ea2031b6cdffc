/** Writes and waits when the stream asks to (backpressure). */
export async function write (stream: NodeJS.WritableStream, data: string | Uint8Array): Promise<void> {
  if (stream.write(data)) return
  await new Promise<void>((resolve, reject) => {
    const done = (err?: Error): void => {
      stream.off('drain', done)
      stream.off('error', done)
      stream.off('close', done)
      if (err instanceof Error) reject(err); else resolve()
    }
    stream.on('drain', done)
    stream.on('error', done)
    stream.on('close', done)
  })
}

export default async function globalTeardown() {
  await globalThis.__gatehouseEmbedded?.stop();
}

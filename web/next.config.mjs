/** @type {import('next').NextConfig} */
const nextConfig = {
  reactStrictMode: true,
  // the workbench is served by `loupe serve` on one machine; no telemetry, no image optimiser downloads
  images: { unoptimized: true },
  poweredByHeader: false,
};

export default nextConfig;

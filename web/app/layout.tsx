import type { Metadata, Viewport } from 'next';
import Link from 'next/link';
import type { ReactNode } from 'react';
import './globals.css';

export const metadata: Metadata = {
  title: 'Loupe',
  description: 'Interpretability workbench: neurons, SAE features, explanations and steering for GPT-2',
};

export const viewport: Viewport = { width: 'device-width', initialScale: 1 };

export default function RootLayout({ children }: { children: ReactNode }) {
  return (
    <html lang="en">
      <body>
        <header className="site-header">
          <Link href="/" className="brand">
            Loupe
          </Link>
          <nav>
            <Link href="/">Models</Link>
            <Link href="/published">Published</Link>
            <Link href="/search">Search</Link>
            <Link href="/steer">Steer</Link>
            <Link href="/attention">Attention</Link>
            <Link href="/lens">Lens</Link>
            <Link href="/patching">Patching</Link>
            <Link href="/dla">DLA</Link>
            <Link href="/shop">Shop</Link>
            <Link href="/jobs">Jobs</Link>
          </nav>
        </header>
        <main>{children}</main>
      </body>
    </html>
  );
}

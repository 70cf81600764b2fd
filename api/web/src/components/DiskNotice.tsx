// The appliance's disk, said on every page while it is too full to record: the proxy then
// forwards nothing (an unrecorded request is never sent), so every agent's requests fail
// until the person frees space. Asked of /api/disk as the page opens and every 30 s (not of
// /api/health, whose 503 for a backend that is down would be an error in every page's
// console); the answer names the sessions using the most, their containers' layers included.
import { useEffect, useState } from "preact/hooks";
import { api, type DiskHealth } from "../api";

const EVERY_MS = 30_000;

function mib(bytes: number): string {
  return `${Math.floor(bytes / 2 ** 20)} MiB`;
}

export function DiskNotice() {
  const [disk, setDisk] = useState<DiskHealth | null>(null);
  useEffect(() => {
    let gone = false;
    const look = () => api.disk()
      .then(d => { if (!gone) setDisk(d); })
      .catch(() => undefined);  // the link indicator says when the appliance is away
    void look();
    const timer = setInterval(() => void look(), EVERY_MS);
    return () => { gone = true; clearInterval(timer); };
  }, []);
  if (!disk?.full) return null;
  const largest = disk.largest ?? [];
  const files = disk.free_bytes >= disk.reserve_bytes && disk.free_files !== null;
  return <div class="banner danger" role="alert" data-testid="disk-notice">
    <span><b>{files ? "The appliance's disk has no room for more files" :
      "The appliance's disk is full"}</b>: {mib(disk.free_bytes)} free
      {files && `, room for ${disk.free_files} files`} on <code>{disk.path}</code>. The proxy
      forwards nothing it cannot record, so every agent's requests fail until you free
      {files ? " files (an agent can make millions of empty ones)" : " space"}.
      {largest.length > 0 && <> Using the most: {largest.map((w, i) =>
        <span key={w.name} data-testid="disk-user">{i > 0 && ", "}<b>{w.name}</b>
          {w.files !== null ? ` ${w.files} files` : ` ${mib(w.bytes)}`}
          {w.files === null && w.container_bytes >= 2 ** 20 &&
            ` (${mib(w.container_bytes)} in its container)`}
          {w.files === null && w.audit_bytes >= 2 ** 20 &&
            ` (${mib(w.audit_bytes)} of its requests' audit lines)`}</span>)}.</>}
    </span>
  </div>;
}

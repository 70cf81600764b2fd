// Image attachments: pick, drop or paste; thumbnails with a remove button. Checked here
// (images, 10 MB) so a person hears about a wrong file before the upload refuses it.
import { useEffect, useState } from "preact/hooks";
import { bytes } from "../format";

const LIMIT = 10 * 1024 * 1024;
const TYPES = ["image/png", "image/jpeg", "image/gif", "image/webp"];

function Thumb({ file, onRemove }: { file: File; onRemove: () => void }) {
  const [src, setSrc] = useState("");
  useEffect(() => {
    const u = URL.createObjectURL(file);
    setSrc(u);
    return () => URL.revokeObjectURL(u);
  }, [file]);
  return <li class="thumb">
    {src && <img src={src} alt={file.name} />}
    <span class="small">{file.name} · {bytes(file.size)}</span>
    <button type="button" class="icon-button" aria-label={`Remove ${file.name}`} onClick={onRemove}>✕</button>
  </li>;
}

export function Attachments({ files, onChange }: { files: File[]; onChange: (f: File[]) => void }) {
  const [problem, setProblem] = useState("");
  const [over, setOver] = useState(false);
  function add(list: FileList | File[] | null) {
    const picked = [...(list ?? [])];
    const bad = picked.filter(f => !TYPES.includes(f.type) || f.size > LIMIT);
    setProblem(bad.length ? `${bad.map(f => f.name).join(", ")}: only PNG, JPEG, GIF or WebP images up to 10 MB.` : "");
    onChange([...files, ...picked.filter(f => !bad.includes(f))]);
  }
  return <div class={`attachments${over ? " over" : ""}`}
    onDragOver={e => { e.preventDefault(); setOver(true); }} onDragLeave={() => setOver(false)}
    onDrop={e => { e.preventDefault(); setOver(false); add(e.dataTransfer?.files ?? null); }}>
    <label class="button small-button">
      <input type="file" accept={TYPES.join(",")} multiple hidden data-testid="attach"
        onChange={e => { add(e.currentTarget.files); e.currentTarget.value = ""; }} />
      Attach images
    </label>
    {files.length > 0 && <ul class="thumbs">{files.map((f, i) =>
      <Thumb file={f} onRemove={() => onChange(files.filter((_, j) => j !== i))} />)}</ul>}
    {problem && <p class="field-error" role="alert">{problem}</p>}
  </div>;
}

export function ErrorBox(props: { code: string; message: string }) {
  return (
    <div className="error" role="alert" data-code={props.code}>
      <strong>{props.code}</strong>: {props.message}
    </div>
  );
}

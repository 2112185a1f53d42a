/* Money as the page shows it. */

// The one rule for every amount on the page (the admin uses the same, billing/money.py):
// $1 or more in cents ($12.35); below a dollar to four places ($0.0608, $0.0034), so that
// amounts side by side have the same precision and a small tax never reads as $0.00;
// nonzero amounts below $0.0001 show as <$0.0001; zero is $0.00.
export function usd(value) {
  if (value === null || value === undefined) return "–";
  const n = Number(value);
  const abs = Math.abs(n);
  const sign = n < 0 ? "−" : "";
  if (abs === 0) return "$0.00";
  if (abs < 0.00005) return `${sign}<$0.0001`;
  const small = abs.toFixed(4);
  if (Number(small) < 1) return `${sign}$${small}`;
  return `${sign}$${abs.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
}

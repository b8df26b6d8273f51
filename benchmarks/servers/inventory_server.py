"""Stockroom: a small shop's inventory, orders, customers and suppliers, as an MCP server.

A third-party MCP server, written with nothing but the ``mcp`` SDK (no goalgraph import), that the
agent task suite uses to test goalgraph against tools it did not design. It keeps its whole state
in one JSON file, read before and written after every call, so a test can seed the file before a
run and read it afterwards::

    python inventory_server.py --state /tmp/shop/inventory.json      # stdio
    INVENTORY_STATE=/tmp/shop/inventory.json python inventory_server.py

The file (created on the first change when missing) holds five mappings keyed by id::

    {"products":  {"hinge-brass": {"name": "Brass hinge", "category": "hardware",
                                   "quantity": 14, "price": 3.2, "location": "B2",
                                   "supplier": "hingeco", "reorder_level": 20}},
     "suppliers": {"hingeco": {"name": "Hinge & Co", "contact": "Mara Lenz",
                               "email": "orders@hingeco.example", "phone": "+49 30 5550 1200",
                               "lead_time_days": 6}},
     "customers": {"c-ada": {"name": "Ada Brook", "company": "Brook Joinery",
                             "email": "ada@brookjoinery.example", "phone": "+44 20 7946 0101"}},
     "orders":    {"SO-1001": {"customer": "c-ada", "status": "open", "created": "2024-05-02",
                               "lines": [{"sku": "hinge-brass", "quantity": 4,
                                          "unit_price": 3.2}]}},
     "restock_requests": {"RR-1": {"sku": "hinge-brass", "quantity": 50, "supplier": "hingeco",
                                   "status": "requested"}}}

Read tools carry ``readOnlyHint``; tools that change the file carry ``readOnlyHint: false`` and
``destructiveHint`` (true when they overwrite or remove something, false when they only add).
Every error says what exists instead ("no product with SKU 'x'; SKUs: ...").
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from mcp.server.fastmcp import FastMCP
from mcp.server.fastmcp.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field

__all__ = ["STATE_ENV", "Store", "build_server", "main"]

STATE_ENV = "INVENTORY_STATE"
"""Environment variable naming the state file when ``--state`` is not given."""

SECTIONS = ("products", "suppliers", "customers", "orders", "restock_requests")
"""The mappings the state file holds."""

ORDER_STATUSES = ("open", "shipped", "cancelled")

READS = ToolAnnotations(readOnlyHint=True, openWorldHint=False)
ADDS = ToolAnnotations(readOnlyHint=False, destructiveHint=False, openWorldHint=False)
CHANGES = ToolAnnotations(readOnlyHint=False, destructiveHint=True, openWorldHint=False)

_LISTED = 25
"""Most ids named in an error message."""


class StateFileError(Exception):
    """The state file cannot be read or is not the expected JSON."""


class Store:
    """The JSON state file: loaded fresh for every call, replaced atomically on every change."""

    def __init__(self, path: Path) -> None:
        """Use the state file at ``path`` (it need not exist yet)."""
        self.path = path

    def load(self) -> dict[str, dict[str, Any]]:
        """Return the state, with every section present.

        Raises:
            StateFileError: If the file is unreadable, not JSON, or not shaped like the state.
        """
        if not self.path.exists():
            return {section: {} for section in SECTIONS}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise StateFileError(f"cannot read {self.path}: {exc.strerror or exc}") from None
        except json.JSONDecodeError as exc:
            raise StateFileError(f"{self.path} is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise StateFileError(f"{self.path} must hold a JSON object")
        unknown = sorted(set(data) - set(SECTIONS))
        if unknown:
            raise StateFileError(
                f"{self.path} has unknown sections {', '.join(unknown)}; "
                f"expected {', '.join(SECTIONS)}"
            )
        for section in SECTIONS:
            value = data.setdefault(section, {})
            if not isinstance(value, dict):
                raise StateFileError(f"{self.path}: {section!r} must be an object keyed by id")
        return data

    def save(self, data: dict[str, dict[str, Any]]) -> None:
        """Write the state atomically (a temporary file, then a rename)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".inventory-")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump(data, out, indent=1, ensure_ascii=False)
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def read(self) -> dict[str, dict[str, Any]]:
        """Return the state for a read-only tool; a broken file becomes a tool error."""
        try:
            return self.load()
        except StateFileError as exc:
            raise ToolError(f"the inventory file is unusable: {exc}") from None

    def change(self, edit: Callable[[dict[str, dict[str, Any]]], str]) -> str:
        """Apply ``edit`` to the state and save it; ``edit`` returns the tool's answer."""
        data = self.read()
        answer = edit(data)
        self.save(data)
        return answer


def _named(ids: Sequence[str]) -> str:
    shown = sorted(ids)[:_LISTED]
    more = len(ids) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "") if shown else "none"


def _key(data: dict[str, dict[str, Any]], section: str, key: str, what: str, ids: str) -> str:
    """Return the id in ``section`` that ``key`` names (ids match case-insensitively).

    Raises:
        ToolError: Naming the ids that exist, e.g. "no product with SKU 'x'; SKUs: a, b".
    """
    wanted = key.strip().lower()
    for record_id in data[section]:
        if record_id.lower() == wanted:
            return record_id
    raise ToolError(f"no {what} {key!r}; {ids}: {_named(list(data[section]))}")


def _sku_of(data: dict[str, dict[str, Any]], sku: str) -> str:
    return _key(data, "products", sku, "product with SKU", "SKUs")


def _order_id_of(data: dict[str, dict[str, Any]], order_id: str) -> str:
    return _key(data, "orders", order_id, "order", "orders")


def _money(value: float) -> str:
    return f"{value:.2f}"


def _product_line(sku: str, product: dict[str, Any]) -> str:
    return (
        f"{sku}: {product.get('name', sku)} - {product.get('quantity', 0)} in stock, "
        f"{_money(product.get('price', 0.0))} EUR each"
    )


def _supplier_id(data: dict[str, dict[str, Any]], supplier: str) -> str:
    """Return the id of the supplier named by id or by (part of) its name."""
    wanted = supplier.strip().lower()
    suppliers = data["suppliers"]
    for supplier_id, record in suppliers.items():
        if wanted in (supplier_id.lower(), str(record.get("name", "")).lower()):
            return supplier_id
    partial = [
        supplier_id
        for supplier_id, record in suppliers.items()
        if wanted and wanted in str(record.get("name", "")).lower()
    ]
    if len(partial) == 1:
        return partial[0]
    listed = [f"{record.get('name', key)} ({key})" for key, record in suppliers.items()]
    if len(partial) > 1:
        raise ToolError(f"{supplier!r} matches several suppliers: {_named(partial)}")
    raise ToolError(f"no supplier {supplier!r}; suppliers: {_named(listed)}")


def _customer_id(data: dict[str, dict[str, Any]], customer: str) -> str:
    """Return the id of the customer named by id, or by part of their name or company."""
    wanted = customer.strip().lower()
    customers = data["customers"]
    if wanted in (key.lower() for key in customers):
        return next(key for key in customers if key.lower() == wanted)
    matches = [
        key
        for key, record in customers.items()
        if wanted
        and (
            wanted in str(record.get("name", "")).lower()
            or wanted in str(record.get("company", "")).lower()
        )
    ]
    if len(matches) == 1:
        return matches[0]
    listed = [f"{record.get('name', key)} ({key})" for key, record in customers.items()]
    if matches:
        raise ToolError(f"{customer!r} matches several customers: {_named(matches)}")
    raise ToolError(f"no customer matches {customer!r}; customers: {_named(listed)}")


def _order_total(order: dict[str, Any]) -> float:
    return sum(line["quantity"] * line.get("unit_price", 0.0) for line in order.get("lines", []))


def _describe_order(data: dict[str, dict[str, Any]], order_id: str) -> str:
    order = data["orders"][order_id]
    customer = data["customers"].get(order.get("customer", ""), {})
    who = customer.get("name", order.get("customer", "unknown customer"))
    lines = [
        f"order {order_id}: {order.get('status', 'open')}, placed {order.get('created', '?')} "
        f"by {who} ({order.get('customer', '?')}), total {_money(_order_total(order))} EUR"
    ]
    for line in order.get("lines", []):
        name = data["products"].get(line["sku"], {}).get("name", line["sku"])
        lines.append(
            f"- {line['quantity']} x {line['sku']} ({name}) at {_money(line.get('unit_price', 0))}"
        )
    return "\n".join(lines)


def _next_id(existing: Sequence[str], prefix: str, first: int) -> str:
    numbers = [
        int(key[len(prefix) :])
        for key in existing
        if key.startswith(prefix) and key[len(prefix) :].isdigit()
    ]
    return f"{prefix}{max(numbers, default=first - 1) + 1}"


SkuArg = Annotated[
    str,
    Field(
        description="The product's SKU, e.g. hinge-brass (search_products lists them)",
        min_length=1,
        max_length=80,
    ),
]
OrderArg = Annotated[
    str, Field(description="The order number, e.g. SO-1001", min_length=1, max_length=40)
]


def build_server(store: Store) -> FastMCP:
    """Build the server; every tool reads and writes ``store``."""
    server = FastMCP(
        "stockroom",
        instructions=(
            "A shop's stockroom: products (by SKU) with stock, price and supplier; customer "
            "orders; customers and suppliers with their contact details; restock requests."
        ),
        log_level="WARNING",
    )

    @server.tool(annotations=READS, structured_output=False)
    def search_products(
        text: Annotated[
            str, Field(description="Words of the product's name, SKU or category; empty: all")
        ] = "",
        low_stock_only: Annotated[
            bool, Field(description="Only products at or below their reorder level")
        ] = False,
    ) -> str:
        """Find products in the stockroom and show each one's SKU, name, stock and price."""
        data = store.read()
        words = text.lower().split()
        found = []
        for sku, product in sorted(data["products"].items()):
            haystack = f"{sku} {product.get('name', '')} {product.get('category', '')}".lower()
            if words and not all(word in haystack for word in words):
                continue
            if low_stock_only and product.get("quantity", 0) > product.get("reorder_level", 0):
                continue
            found.append(_product_line(sku, product))
        if not found:
            return f"no product matches {text!r}; SKUs: {_named(list(data['products']))}"
        return "\n".join(found)

    @server.tool(annotations=READS, structured_output=False)
    def get_product(sku: SkuArg) -> str:
        """Show one product: units in stock, price, shelf location, reorder level, supplier."""
        data = store.read()
        key = _sku_of(data, sku)
        product = data["products"][key]
        supplier_id = product.get("supplier", "")
        supplier = data["suppliers"].get(supplier_id, {}).get("name", supplier_id or "none")
        return (
            f"{key}: {product.get('name', key)} ({product.get('category', 'uncategorised')})\n"
            f"in stock: {product.get('quantity', 0)} units on shelf "
            f"{product.get('location', '?')}\n"
            f"price: {_money(product.get('price', 0.0))} EUR\n"
            f"reorder level: {product.get('reorder_level', 0)}\n"
            f"supplier: {supplier} ({supplier_id or 'none'})"
        )

    @server.tool(annotations=CHANGES, structured_output=False)
    def adjust_stock(
        sku: SkuArg,
        change: Annotated[
            int,
            Field(
                description="Units to add (a delivery: positive) or remove (damage, loss: negative)"
            ),
        ],
        reason: Annotated[
            str, Field(description="Why the stock changes, e.g. delivery, damaged, stocktake")
        ] = "",
    ) -> str:
        """Add units to or remove units from a product's stock count and say the new count."""

        def edit(data: dict[str, dict[str, Any]]) -> str:
            key = _sku_of(data, sku)
            product = data["products"][key]
            before = int(product.get("quantity", 0))
            if change == 0:
                raise ToolError("change must not be 0")
            if before + change < 0:
                raise ToolError(
                    f"{key} has {before} units; removing {-change} would leave {before + change}"
                )
            product["quantity"] = before + change
            why = f" ({reason})" if reason else ""
            return f"{key}: {before} -> {before + change} units{why}"

        return store.change(edit)

    @server.tool(annotations=CHANGES, structured_output=False)
    def set_price(
        sku: SkuArg,
        price: Annotated[float, Field(description="The new unit price in EUR", gt=0, le=1e6)],
    ) -> str:
        """Change a product's unit price; open orders keep the price they were placed at."""

        def edit(data: dict[str, dict[str, Any]]) -> str:
            key = _sku_of(data, sku)
            product = data["products"][key]
            before = float(product.get("price", 0.0))
            product["price"] = round(price, 2)
            return f"{key}: price {_money(before)} -> {_money(product['price'])} EUR"

        return store.change(edit)

    @server.tool(annotations=READS, structured_output=False)
    def get_supplier(
        supplier: Annotated[
            str,
            Field(
                description="The supplier's id or name, e.g. hingeco or Hinge & Co",
                min_length=1,
                max_length=80,
            ),
        ],
    ) -> str:
        """Show a supplier's contact person, email, phone, delivery time and the SKUs it sells."""
        data = store.read()
        supplier_id = _supplier_id(data, supplier)
        record = data["suppliers"][supplier_id]
        skus = [
            sku for sku, p in sorted(data["products"].items()) if p.get("supplier") == supplier_id
        ]
        return (
            f"{record.get('name', supplier_id)} ({supplier_id})\n"
            f"contact: {record.get('contact', '?')}\n"
            f"email: {record.get('email', '?')}\n"
            f"phone: {record.get('phone', '?')}\n"
            f"delivery time: {record.get('lead_time_days', '?')} days\n"
            f"supplies: {', '.join(skus) or 'nothing in stock'}"
        )

    @server.tool(annotations=READS, structured_output=False)
    def find_customer(
        name: Annotated[
            str,
            Field(
                description="Part of the customer's name or company, or their id (c-...)",
                min_length=1,
                max_length=80,
            ),
        ],
    ) -> str:
        """Look up a customer's contact details (email, phone, company) and their orders."""
        data = store.read()
        customer_id = _customer_id(data, name)
        record = data["customers"][customer_id]
        orders = [
            f"{order_id} ({order.get('status', 'open')})"
            for order_id, order in sorted(data["orders"].items())
            if order.get("customer") == customer_id
        ]
        return (
            f"{record.get('name', customer_id)} ({customer_id}), {record.get('company', '-')}\n"
            f"email: {record.get('email', '?')}\n"
            f"phone: {record.get('phone', '?')}\n"
            f"orders: {', '.join(orders) or 'none'}"
        )

    @server.tool(annotations=READS, structured_output=False)
    def list_orders(
        status: Annotated[
            Literal["open", "shipped", "cancelled", "any"],
            Field(description="Only orders with this status"),
        ] = "any",
        customer: Annotated[
            str, Field(description="Only this customer's orders (name, company or id)")
        ] = "",
    ) -> str:
        """List customer orders with their status, customer and total."""
        data = store.read()
        customer_id = _customer_id(data, customer) if customer.strip() else None
        rows = []
        for order_id, order in sorted(data["orders"].items()):
            if status != "any" and order.get("status", "open") != status:
                continue
            if customer_id is not None and order.get("customer") != customer_id:
                continue
            who = data["customers"].get(order.get("customer", ""), {}).get("name", "?")
            rows.append(
                f"{order_id}: {order.get('status', 'open')}, {who}, "
                f"total {_money(_order_total(order))} EUR"
            )
        return "\n".join(rows) if rows else "no orders match"

    @server.tool(annotations=READS, structured_output=False)
    def get_order(order_id: OrderArg) -> str:
        """Show one order: status, date, customer, each line and the total."""
        data = store.read()
        return _describe_order(data, _order_id_of(data, order_id))

    @server.tool(annotations=ADDS, structured_output=False)
    def place_order(
        customer: Annotated[
            str,
            Field(description="The customer's name, company or id", min_length=1, max_length=80),
        ],
        sku: SkuArg,
        quantity: Annotated[int, Field(description="Units ordered", gt=0, le=100000)],
    ) -> str:
        """Place an order for a customer; the units are taken from stock at the current price."""

        def edit(data: dict[str, dict[str, Any]]) -> str:
            customer_id = _customer_id(data, customer)
            key = _sku_of(data, sku)
            product = data["products"][key]
            available = int(product.get("quantity", 0))
            if quantity > available:
                raise ToolError(
                    f"only {available} units of {key} in stock; cannot order {quantity}"
                )
            product["quantity"] = available - quantity
            order_id = _next_id(list(data["orders"]), "SO-", 1001)
            data["orders"][order_id] = {
                "customer": customer_id,
                "status": "open",
                "created": date.today().isoformat(),
                "lines": [
                    {"sku": key, "quantity": quantity, "unit_price": product.get("price", 0.0)}
                ],
            }
            return "placed " + _describe_order(data, order_id)

        return store.change(edit)

    @server.tool(annotations=CHANGES, structured_output=False)
    def cancel_order(
        order_id: OrderArg,
        reason: Annotated[str, Field(description="Why the order is cancelled")] = "",
    ) -> str:
        """Cancel an open order and put its units back into stock."""

        def edit(data: dict[str, dict[str, Any]]) -> str:
            key = _order_id_of(data, order_id)
            order = data["orders"][key]
            status = order.get("status", "open")
            if status != "open":
                raise ToolError(f"order {key} is {status}; only open orders can be cancelled")
            for line in order.get("lines", []):
                product = data["products"].get(line["sku"])
                if product is not None:
                    product["quantity"] = int(product.get("quantity", 0)) + line["quantity"]
            order["status"] = "cancelled"
            if reason:
                order["cancel_reason"] = reason
            return f"order {key} cancelled; its units are back in stock"

        return store.change(edit)

    @server.tool(annotations=CHANGES, structured_output=False)
    def ship_order(order_id: OrderArg) -> str:
        """Mark an open order as shipped (it left the stockroom; it can no longer be cancelled)."""

        def edit(data: dict[str, dict[str, Any]]) -> str:
            key = _order_id_of(data, order_id)
            order = data["orders"][key]
            status = order.get("status", "open")
            if status != "open":
                raise ToolError(f"order {key} is {status}; only open orders can be shipped")
            order["status"] = "shipped"
            return f"order {key} shipped"

        return store.change(edit)

    @server.tool(annotations=ADDS, structured_output=False)
    def request_restock(
        sku: SkuArg,
        quantity: Annotated[
            int, Field(description="Units to order from the supplier", gt=0, le=100000)
        ],
    ) -> str:
        """Ask a product's supplier for more units; says the request number and delivery time."""

        def edit(data: dict[str, dict[str, Any]]) -> str:
            key = _sku_of(data, sku)
            supplier_id = data["products"][key].get("supplier")
            supplier = data["suppliers"].get(supplier_id or "")
            if supplier is None:
                raise ToolError(f"{key} has no supplier on file; set one before restocking")
            request_id = _next_id(list(data["restock_requests"]), "RR-", 1)
            data["restock_requests"][request_id] = {
                "sku": key,
                "quantity": quantity,
                "supplier": supplier_id,
                "status": "requested",
            }
            return (
                f"restock request {request_id}: {quantity} x {key} from "
                f"{supplier.get('name', supplier_id)} ({supplier.get('email', 'no email')}), "
                f"expected in {supplier.get('lead_time_days', '?')} days"
            )

        return store.change(edit)

    return server


def main(argv: Sequence[str] | None = None) -> None:
    """Run the server over stdio (or streamable HTTP) on the state file given."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--state", type=Path, help=f"the JSON state file (default: ${STATE_ENV})")
    parser.add_argument("--transport", choices=["stdio", "streamable-http"], default="stdio")
    parser.add_argument("--port", type=int, default=8770, help="HTTP port (default: 8770)")
    args = parser.parse_args(argv)
    path = args.state or (Path(os.environ[STATE_ENV]) if os.environ.get(STATE_ENV) else None)
    if path is None:
        parser.error(f"give the state file with --state PATH or ${STATE_ENV}")
    store = Store(path)
    try:
        store.load()
    except StateFileError as exc:
        print(f"inventory_server: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    server = build_server(store)
    server.settings.port = args.port
    server.run(args.transport)


if __name__ == "__main__":
    main()

"""InvoiceV1: header fields, line items and totals extracted from one invoice.

Nullable fields are unions with None: strict mode requires every field, and the model is told
to answer null rather than guess. Field descriptions are instructions to the model.
"""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = "invoice_v1"


class InvoiceLineItemV1(BaseModel):
    """One billed line of the invoice."""

    model_config = ConfigDict(extra="forbid")

    description: str = Field(description="The line's description as printed.")
    quantity: float | None = Field(description="The quantity billed; null if not printed.")
    unit_price: float | None = Field(
        description="Price of one unit, without currency symbol; null if not printed."
    )
    amount: float | None = Field(
        description="The line total as printed, without currency symbol; null if not printed."
    )


class InvoiceV1(BaseModel):
    """The fields of one invoice. Copy values as printed; answer null for anything absent."""

    model_config = ConfigDict(extra="forbid")

    is_invoice: bool = Field(
        description="False if the document is not an invoice or bill; then leave the other "
        "fields null or empty."
    )
    vendor_name: str | None = Field(description="The legal name of the seller issuing the invoice.")
    vendor_address: str | None = Field(description="The seller's postal address on one line.")
    vendor_tax_id: str | None = Field(description="The seller's VAT or tax identification number.")
    customer_name: str | None = Field(description="The name of the billed customer.")
    invoice_number: str | None = Field(description="The invoice number exactly as printed.")
    invoice_date: date | None = Field(description="The issue date, as YYYY-MM-DD.")
    due_date: date | None = Field(description="The payment due date, as YYYY-MM-DD.")
    currency: str | None = Field(
        description="The ISO 4217 currency code, e.g. 'EUR' or 'USD', inferred from symbols if needed."
    )
    line_items: list[InvoiceLineItemV1] = Field(
        description="Every billed line in order; an empty list if none are itemised."
    )
    subtotal: float | None = Field(description="The total before tax.")
    tax_amount: float | None = Field(description="The total tax charged.")
    total: float | None = Field(description="The amount due including tax.")
    payment_terms: str | None = Field(description="Payment terms as printed, e.g. 'Net 30'.")

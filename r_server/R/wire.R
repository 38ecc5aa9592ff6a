# Values leaving the study, in the formats of Opal's REST API (r_server/http.py): R's own serialization
# (serialize(value, NULL), XDR) and Rock's JSON. Every value is scrubbed first: a formula or a closure
# carries its environment, and serialize() would ship that environment whole (a session, its data frames
# and their rows). The scrub keeps the global, base and empty environments (serialize writes them as a
# marker, never their contents) and replaces every other environment -- a value, a closure's environment,
# an attribute such as a formula's .Environment -- by the global environment, which is what a client
# that unserializes the value gets for a formula built at its own top level.

.ds_kept_env <- function(e) identical(e, globalenv()) || identical(e, baseenv()) || identical(e, emptyenv())

.ds_scrub_attributes <- function(x) {
  # Only an attribute the scrub changed is set again: setting `dim` (even to itself) drops `dimnames`.
  for (name in names(attributes(x))) {
    value <- attr(x, name, exact = TRUE)
    if (is.null(value) || is.symbol(value)) next
    scrubbed <- .ds_scrub(value)
    if (!identical(scrubbed, value)) attr(x, name) <- scrubbed
  }
  x
}

.ds_scrub <- function(x) {
  if (is.environment(x)) return(if (.ds_kept_env(x)) x else globalenv())
  if (is.null(x) || is.symbol(x)) return(x)
  if (typeof(x) == "closure" && !.ds_kept_env(environment(x))) environment(x) <- globalenv()
  if (is.pairlist(x)) {
    x[] <- lapply(as.list(x), .ds_scrub)
  } else if (is.list(x) || is.expression(x)) {
    x[] <- lapply(x, function(e) if (is.null(e)) e else .ds_scrub(e))
  } else if (is.call(x)) {
    for (i in seq_along(x)) {
      e <- x[[i]]
      if (!missing(e) && !is.null(e) && !is.symbol(e) && (is.recursive(e) || !is.null(attributes(e)))) {
        x[[i]] <- .ds_scrub(e)
      }
    }
  }
  .ds_scrub_attributes(x)
}

.ds_wire_value <- function(box, scrub) if (isTRUE(scrub)) .ds_scrub(box[[1L]]) else box[[1L]]

# serialize(value, NULL): XDR, format version 3, as R and Rock write it by default.
.ds_serialize <- function(box, scrub) .ds_guard(serialize(.ds_wire_value(box, scrub), NULL))

# Rock's JSON: toJSON with every digit, serializeJSON (every digit too) for what toJSON cannot write.
.ds_to_json <- function(box, scrub) {
  .ds_guard({
    x <- .ds_wire_value(box, scrub)
    out <- tryCatch(jsonlite::toJSON(x, auto_unbox = TRUE, null = "null", na = "null", digits = NA),
                    error = function(e) jsonlite::serializeJSON(x, digits = NA))
    charToRaw(enc2utf8(as.character(out)))
  })
}

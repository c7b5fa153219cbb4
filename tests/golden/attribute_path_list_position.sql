JSONExtractRaw(_item, 'order lines', 'L', 1, 'M', 'sku\'s')

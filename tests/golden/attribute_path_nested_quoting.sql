JSONExtractRaw(_item, 'shipping', 'M', 'it\'s', 'M', 'a.b\\c`d', 'M', '日本')
